# longrun — the two commands a newcomer runs: `make demo` and `make test`.
# Everything installs into .venv; nothing is needed beforehand but Python 3.11+ and git.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench up deploy clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: start the local cloud, run a create-project job, print the job.finished it pushed, stop.
demo: $(STAMP)
	$(BIN)/python -m longrun.demo

## test: the whole suite (unit, workflow, end-to-end, template), then lint.
test: $(STAMP)
	$(BIN)/python -m pytest -q
	$(BIN)/ruff check .

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/cfn-lint infra/template.yaml

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

clean:
	rm -rf $(VENV) .longrun .pytest_cache .ruff_cache
