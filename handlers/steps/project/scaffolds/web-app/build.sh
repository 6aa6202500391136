#!/bin/sh
# Build {{name}}: copy src/ into dist/, each file beside a pre-compressed copy (.gz) for the CDN.
# Compressing is the slow part, so each result is kept in the project's build cache by content
# hash ($LONGRUN_CACHE_DIR outlives the build): the next build compresses only what changed.
set -eu
cache="${LONGRUN_CACHE_DIR:-.cache}/gzip"
mkdir -p "$cache"
rm -rf dist
mkdir -p dist
reused=0
made=0
for f in src/*; do
  name=$(basename "$f")
  cp "$f" "dist/$name"
  sum=$(sha256sum "$f" | cut -c1-64)
  if [ -f "$cache/$sum.gz" ]; then
    reused=$((reused + 1))
  else
    gzip -9 -n -c "$f" > "$cache/$sum.gz.tmp"
    mv "$cache/$sum.gz.tmp" "$cache/$sum.gz"
    made=$((made + 1))
  fi
  cp "$cache/$sum.gz" "dist/$name.gz"
done
echo "built {{name}} into dist/ ($made compressed, $reused from the cache)"
