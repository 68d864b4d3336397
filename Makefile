# Two commands do all set-up on a fresh machine (Python 3.11 + pip):
#   make demo   — create .venv, install callscope, run the demo on embedded defaults
#   make test   — create .venv, install callscope[dev], run ruff, mypy and the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
# pyproject.toml, setup.py and the C hot path: a change to any reinstalls (rebuilds the C).
BUILD   = pyproject.toml setup.py instrument/_hotpath.c
# The packages mypy checks in `make test` and `make lint`: every package of the product.
TYPED   = $(wildcard callscope_contract rpc instrument storage collector pipeline dashboard callscope)
CKSUM   = $(shell cat $(BUILD) | cksum | cut -d' ' -f1)
STAMP   = $(VENV)/.installed-$(CKSUM)
# `make demo` needs only the runtime and pyspark (the demo's weight feedback runs the pipeline's
# Spark job; no test toolchain): its own stamp. A dev install
# (`make test`) holds the runtime too, so the demo uses that one when it is there.
RUNTIME = $(VENV)/.runtime-$(CKSUM)
# setuptools' build-time notices (an editable install, ...) are not the user's business.
QUIET_PIP = PYTHONWARNINGS=ignore $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: demo test lint bench clean

$(STAMP): $(BUILD)
	@sh deploy/c-compiler.sh $(PYTHON)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(QUIET_PIP) --upgrade pip
	$(QUIET_PIP) -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

$(RUNTIME): $(BUILD)
	@echo "make demo [1/3]: checking for a C compiler (tracing's C hot path)"
	@sh deploy/c-compiler.sh $(PYTHON)
	@echo "make demo [2/3]: installing callscope, its runtime dependencies and pyspark into $(VENV)" \
		"(a minute or two the first time) ..."
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(QUIET_PIP) --upgrade pip
	@$(QUIET_PIP) -e '.[spark]'
	@rm -f $(VENV)/.runtime-* && touch $(RUNTIME)

# `make demo DEMO_ARGS="--duration 90"`: any of `callscope demo --help`'s options.
DEMO_ARGS ?=
demo: $(if $(wildcard $(STAMP)),$(STAMP),$(RUNTIME))
	@echo "make demo [3/3]: $(VENV)/bin/callscope demo $(DEMO_ARGS)  (Ctrl-C stops it)"
	@$(VENV)/bin/callscope demo $(DEMO_ARGS)

test: $(STAMP)
	@sh deploy/chromium.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy $(TYPED)
	$(PY) -m pytest -q -ra

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy $(TYPED)
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) benchmarks/rpc_echo.py --seconds 5

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .import_linter_cache
