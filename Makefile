# Two commands for a newcomer: `make run` and `make test`. CI calls `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: run test setup index browser lint format bench evals fit clean

run: setup index
	$(BIN)/python app.py

test: setup browser index lint
	$(BIN)/python -m pytest

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Builds the index when it is missing or the corpus/model changed, and fits the query stage
# when its example files changed; otherwise both are no-ops.
index: setup
	$(BIN)/python ingest.py
	$(BIN)/python -m evals fit --if-stale --no-folds

# Debian's Chromium for the browser tests (no browser can be downloaded here).
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "Chromium is missing: run 'sudo apt-get install chromium' for the browser tests."; exit 1; \
	  fi; \
	fi

lint: setup
	$(BIN)/ruff check assistant evals tests ingest.py app.py
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format assistant evals tests ingest.py app.py

bench: setup index
	$(BIN)/python -m assistant bench

evals: setup index
	$(BIN)/python -m evals run

# Refit the query stage and print the leave-one-writer-out table (about 3 minutes).
fit: setup index
	$(BIN)/python -m evals fit

clean:
	rm -rf $(VENV) .chroma .data
