# longrun — the two commands a newcomer runs: `make demo` and `make test`.
# Everything installs into .venv; nothing is needed beforehand but Python 3.11+ and git.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SCAN   := .venv-scan
SCAN_STAMP := $(SCAN)/.installed

.PHONY: demo test lint scan scanner bench up deploy clean chromium console-upload

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: start the local cloud, run a create-project job, print the job.finished it pushed, stop.
demo: $(STAMP)
	$(BIN)/python -m longrun.demo

## test: the whole suite (unit, workflow, end-to-end, template, scanners), then lint.
test: $(STAMP) chromium scanner
	$(BIN)/python -m pytest -q
	$(BIN)/ruff check .

## chromium: Debian's browser for the web console's test, installed when missing and apt-get can
## (as root, or with sudo that asks no password); otherwise that test skips and says why.
chromium:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; else sudo=none; fi; \
	  if [ "$$sudo" != none ]; then \
	    echo "installing Debian's chromium for tests/e2e/test_web_console.py"; \
	    ($$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed: the web console's browser test will skip"; \
	  fi; \
	fi

lint: $(STAMP) $(SCAN_STAMP)
	$(BIN)/ruff check .
	$(BIN)/cfn-lint infra/template.yaml
	$(SCAN)/bin/checkov --config-file infra/checkov.yaml -f infra/template.yaml

## scan: checkov on the template (its skips and their reasons: infra/checkov.yaml and resources' Metadata).
scan: $(SCAN_STAMP)
	$(SCAN)/bin/checkov --config-file infra/checkov.yaml -f infra/template.yaml

# checkov in an environment of its own (see the scan extra in pyproject.toml), at the range pinned there.
$(SCAN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(SCAN)
	$(SCAN)/bin/pip install --quiet --upgrade pip
	$(SCAN)/bin/pip install --quiet "$$($(PYTHON) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["scan"])')"
	touch $(SCAN_STAMP)

## scanner: for `make test`, checkov when it can be installed; otherwise tests/infra/test_scanners.py's
## checkov test skips and says why.
scanner:
	@$(MAKE) --no-print-directory $(SCAN_STAMP) || echo "checkov could not be installed: its test will skip"

## bench: the benchmarks of bench/, each beside its baseline from the same run.
bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench

## up: the local cloud in the foreground (Ctrl-C stops it).
up: $(STAMP)
	$(BIN)/longrun local up

## deploy: build and deploy the stack to AWS with the SAM CLI (needs AWS credentials and `sam`).
deploy:
	sam build --template-file infra/template.yaml
	sam deploy --guided

## console-upload: the web console's files to a deployed stack's bucket, served at {api}/static/console/index.html.
STACK ?= longrun
console-upload:
	@output() { aws cloudformation describe-stacks --stack-name $(STACK) \
	    --query "Stacks[0].Outputs[?OutputKey=='$$1'].OutputValue" --output text; }; \
	bucket=$$(output ProjectsBucketName) && ws=$$(output WebSocketUrl) && console=$$(output ConsoleUrl) && \
	aws s3 sync console/ "s3://$$bucket/static/console/" --delete --exclude config.json --cache-control no-cache && \
	printf '{"ws": "%s"}\n' "$$ws" | aws s3 cp - "s3://$$bucket/static/console/config.json" \
	    --content-type application/json --cache-control no-cache && \
	echo "web console: $$console"

clean:
	rm -rf $(VENV) $(SCAN) .longrun .pytest_cache .ruff_cache
