# The two commands of the README:
#   make demo   set up everything, train the default audio LM on the synthetic corpus, write samples, evaluate
#   make test   set up everything, check the style (ruff), run the test suite (CI runs exactly this)
# and, after make demo, `make ui`: the web UI over the runs under logs/
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO := logs/demo

.PHONY: install system demo ui lint format test test-all bench lock clean

# The environment: pinned by requirements.lock (regenerate with `make lock`), then the package itself.
$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "audiolm needs Python 3.11 ($(PYTHON) not found); set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# --no-deps: the lock is the complete set, and resemblyzer's `webrtcvad` requirement (an sdist that no
	# longer builds) is met by webrtcvad-wheels, which provides the same module under another name.
	$(PY) -m pip install --quiet --no-deps -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# System packages, through apt when running as root: espeak-ng synthesises the synthetic corpus, a C
# compiler builds pesq (the codec-preview judge), which PyPI serves as source only, and chromium runs the
# web UI's browser test (Playwright cannot download its own browser here). Without root, a missing
# chromium only skips that test.
system:
	@missing=""; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	command -v gcc >/dev/null || missing="$$missing build-essential python3-dev"; \
	command -v chromium >/dev/null || browser=chromium; \
	if [ -n "$$missing$$browser" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing $$browser; \
	elif [ -n "$$missing" ]; then \
	  echo "missing system packages; install them with:  sudo apt-get install -y$$missing $$browser"; exit 1; \
	elif [ -n "$$browser" ]; then \
	  echo "note: chromium is not installed, so the web UI's browser test is skipped (sudo apt-get install -y chromium)"; \
	fi

install: system $(STAMP)

# The web UI on http://127.0.0.1:7860 over the runs under logs/ (UI_ARGS="--port 8000 --runs-root DIR" to change).
ui: install
	$(PY) -m audiolm.cli.webui $(UI_ARGS)

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
	.venv-lock/bin/pip install --quiet --upgrade pip
	# resemblyzer requires webrtcvad and typing (sdists): build them against the venv's own old setuptools
	# so the resolve succeeds, then keep them out of the lock (webrtcvad-wheels stands in; typing is stdlib).
	.venv-lock/bin/pip install --quiet --no-build-isolation webrtcvad==2.0.10 typing==3.7.4.3
	.venv-lock/bin/pip install --quiet -e '.[dev]'
	.venv-lock/bin/pip freeze --exclude-editable | grep -v -E '^(audiolm|webrtcvad==|typing==)' > requirements.lock
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) logs outputs multirun
