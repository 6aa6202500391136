"""steps/build: the Lambda steps of the build workflow (the build itself runs on a worker: workers/build)."""
