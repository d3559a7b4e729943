# Two entry points, both safe on a fresh clone:
#   make demo  -> set up .venv and run the main job on the embedded default encoder
#   make test  -> set up .venv with test extras and run the test suite
#   make docs  -> build the documentation site into site/ (mkdocs.yml; a broken link or anchor fails it)
#   make wheel-check -> build the wheel, install it into a fresh venv, run the first commands (CI runs it)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# CPU build of torch; an unpinned torch would pull a multi-GB CUDA build. GPU users: see README.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= test,bench,docs
# bench/encode.py's peers: sentence-transformers' ONNX backends need optimum-onnx, which needs transformers 4
PEERS_VENV ?= .venv-peers
PEERS_SPEC ?= torch==2.13.0 sentence-transformers==5.7.0 transformers==4.57.* optimum-onnx==0.1.0 onnxruntime==1.32.*

.PHONY: setup demo test lint docs wheel-check bench bench-peers clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

setup: $(PY)
	@$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e ".[$(EXTRAS)]"

demo: setup
	$(VENV)/bin/jtcse demo

test: setup
	$(PY) -m ruff check src tests bench tools experiments
	$(PY) -m mypy
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check src tests bench tools experiments
	$(PY) -m ruff format --check src tests bench tools experiments
	$(PY) -m mypy

# --strict: a warning (a broken link or anchor, a page missing from the nav, a docstring mkdocstrings cannot
# read) fails the build; the CLI and config references are generated from the code (tools/docs/hooks.py)
docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# what users install: sdist + wheel, twine check, the wheel in a fresh venv outside the checkout
wheel-check: setup
	PYTHON=$(PYTHON) BUILD_PYTHON=$(PY) TORCH_SPEC="$(TORCH_SPEC)" tools/wheel_check.sh

bench: setup
	$(PY) bench/encode.py

# a separate environment for sentence-transformers' own ONNX / ONNX-int8 backends (bench/encode.py runs it)
bench-peers:
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install -q $(PEERS_SPEC)

clean:
	rm -rf $(VENV) $(PEERS_VENV) build dist site src/*.egg-info .pytest_cache .ruff_cache .mypy_cache
