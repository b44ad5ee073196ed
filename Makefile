# Two entry points do everything on a fresh machine: `make book` and `make test`.
# Both create the virtual environment if needed and (re)run the install step every time.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
EXTRAS ?= dev

.PHONY: install book test lint bench assignments clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

install: $(PY)
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'

book: install
	$(VENV)/bin/jupyter-book build . -W --keep-going

test: install
	$(PY) -m ruff check autoencoders tests benchmarks
	AUTOENCODERS_FAST=$${AUTOENCODERS_FAST:-1} $(PY) -m pytest

lint: install
	$(PY) -m ruff check .

bench: install
	$(PY) -m benchmarks.vae_speed

clean:
	rm -rf _build .pytest_cache
