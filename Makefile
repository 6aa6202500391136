# longrun — the two commands a newcomer runs: `make demo` and `make test`.
# Everything installs into .venv (and node_modules); nothing is needed beforehand but Python 3.11+, git, node 20 and npm.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# asl-validator, the judge of the state machines (package.json, docs/judges.md), at the lock's versions.
NODE_STAMP := node_modules/.installed
SCAN   := .venv-scan
SCAN_STAMP := $(SCAN)/.installed
# The AWS SAM CLI, in an environment of its own (the sam extra in pyproject.toml, docs/deploy.md).
SAM    := .venv-sam
SAM_STAMP := $(SAM)/.installed

.PHONY: demo test lint scan scanner sam-cli sam-build bench up deploy clean chromium console-upload

# The tests' tools (dev) and the local cloud (local: moto, the SAM translator...; `pip install longrun` alone is
# the CLI and client): demo, test, bench and up all start from here.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,local]'
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

## demo: start the local cloud, run a create-project job, print the job.finished it pushed, stop.
demo: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m longrun.demo

## test: the whole suite (unit, workflow, end-to-end, template, scanners), then lint.
## test: two pytest workers, each taking whole files (so a module's local cloud is started once); the suite
## waits on clouds more than it computes, so two workers halve its time on two cores. Schemathesis'
## generated cases do not run under xdist (its plugin collects them in the session that runs them):
## that file runs on its own after.
test: $(STAMP) $(NODE_STAMP) chromium scanner sam-cli
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --ignore=tests/security/test_schemathesis.py
	$(BIN)/python -m pytest -q -p no:xdist tests/security/test_schemathesis.py
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

# The SAM CLI in .venv-sam, at the range pinned in pyproject.toml (it pins its own boto3: not in .venv).
$(SAM_STAMP): pyproject.toml
	$(PYTHON) -m venv $(SAM)
	$(SAM)/bin/pip install --quiet --upgrade pip
	$(SAM)/bin/pip install --quiet "$$($(PYTHON) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["sam"])')"
	touch $(SAM_STAMP)

## sam-cli: for `make test`, the SAM CLI when it can be installed; otherwise tests/infra/test_sam_build.py
## skips and says why.
sam-cli:
	@$(MAKE) --no-print-directory $(SAM_STAMP) || echo "the SAM CLI could not be installed: test_sam_build will skip"

## sam-build: `sam build` of the template, as tests/infra/test_sam_build.py runs it (python3.12 on PATH).
sam-build: $(STAMP) $(SAM_STAMP)
	$(BIN)/python -m pytest -q tests/infra/test_sam_build.py

## bench: the benchmarks of bench/, each beside its baseline from the same run.
bench: $(STAMP) $(NODE_STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench

## up: the local cloud in the foreground (Ctrl-C stops it).
up: $(STAMP) $(NODE_STAMP)
	$(BIN)/longrun local up

## deploy: build and deploy the stack to AWS with the SAM CLI of .venv-sam (docs/deploy.md): needs AWS
## credentials, python3.12 on PATH and samconfig.toml (copy infra/samconfig.example.toml; CONFIG= another).
CONFIG ?= samconfig.toml
deploy: $(SAM_STAMP)
	@test -f $(CONFIG) || { echo "no $(CONFIG): cp infra/samconfig.example.toml $(CONFIG) and edit it (docs/deploy.md)"; exit 2; }
	$(SAM)/bin/sam build --config-file $(CONFIG)
	$(SAM)/bin/sam deploy --config-file $(CONFIG)

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
	rm -rf $(VENV) $(SCAN) $(SAM) node_modules .longrun .pytest_cache .ruff_cache
