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
STAMP   = $(VENV)/.installed-$(shell cat $(BUILD) | cksum | cut -d' ' -f1)

.PHONY: demo test lint bench clean

$(STAMP): $(BUILD)
	@sh deploy/c-compiler.sh $(PYTHON)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/callscope demo

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
