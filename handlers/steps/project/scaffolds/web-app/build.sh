#!/bin/sh
# Build {{name}}: copy the sources into dist/.
set -eu
rm -rf dist
mkdir -p dist
cp src/* dist/
echo "built {{name}} into dist/"
