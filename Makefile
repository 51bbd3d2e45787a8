# The two commands of the README:
#   make demo   set up everything, train the default audio LM on the synthetic corpus, write samples, evaluate
#   make test   set up everything, check the style (ruff), run the test suite (CI runs exactly this)
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO := logs/demo

.PHONY: install espeak demo lint format test test-all bench lock clean

# The environment: pinned by requirements.lock (regenerate with `make lock`), then the package itself.
$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "audiolm needs Python 3.11 ($(PYTHON) not found); set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# espeak-ng synthesises the synthetic corpus. Installed through apt when running as root.
espeak:
	@if ! command -v espeak-ng >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng; \
	  else \
	    echo "espeak-ng is missing; install it with:  sudo apt-get install -y espeak-ng"; exit 1; \
	  fi; \
	fi

install: espeak $(STAMP)

demo: install
	rm -rf $(DEMO)
	$(PY) train.py hydra.run.dir=$(DEMO)/train
	$(PY) eval.py ckpt=$(DEMO)/train/checkpoints/last.ckpt eval.out_dir=$(DEMO)/samples
	@echo "samples: $(DEMO)/samples/*.wav   metrics: $(DEMO)/samples/metrics.json"

# Style is checked, not argued: ruff's linter and formatter (configured in pyproject.toml).
lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

test: lint
	$(PY) -m pytest

test-all: lint
	$(PY) -m pytest -m ""

bench: install
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/generation.py

# Re-pin every dependency from a fresh resolve of pyproject.toml.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --upgrade pip && .venv-lock/bin/pip install --quiet -e '.[dev]'
	.venv-lock/bin/pip freeze --exclude-editable | grep -v '^audiolm' > requirements.lock
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) logs outputs multirun
