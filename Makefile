# Two entry points do everything on a fresh machine: `make book` and `make test`.
# Both create the virtual environment if needed and (re)run the install step every time.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
EXTRAS ?= dev

.PHONY: install book test lint bench assignments pretrained page-check clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

install: $(PY)
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'

# `make book` executes every chapter in full mode (what the rendered book shows), using the
# offline MNIST copy beside the clone when there is one, then checks the built HTML
# (offline MathJax; every chapter links to its executed notebook, which
# book/_ext/executed_notebooks.py copies to _build/html/_downloads_executed).
# jupyter-cache keys executed notebooks on their code only, so a fast-mode build
# (AUTOENCODERS_FAST=1) gets its own folder, _build/fast/_build/html, and can never
# leak fast-mode results into _build/html.
# Progress bars are widgets in Jupyter; a static page would only show their first frame
# ("0%|"), so the book build turns them off (TQDM_DISABLE); notebooks opened in
# Jupyter or Colab keep them.
# jupyter-cache does not see the package source, the model zoo, the data or the torch
# version, so tools/book_stamp.py clears the cache whenever one of them has changed.
BOOK_OUT = $(if $(filter 1 true yes on,$(AUTOENCODERS_FAST)),_build/fast,.)
BOOK_DATA = $${AUTOENCODERS_DATA:-$(abspath $(wildcard ../shared/data))}
book: install
	AUTOENCODERS_DATA="$(BOOK_DATA)" $(PY) tools/book_stamp.py --cache $(BOOK_OUT)/_build/.jupyter_cache
	TQDM_DISABLE=1 AUTOENCODERS_DATA="$(BOOK_DATA)" \
		$(VENV)/bin/jupyter-book build . -W --keep-going --path-output $(BOOK_OUT)
	BOOK_HTML=$(BOOK_OUT)/_build/html $(PY) -m pytest tests/test_book_html.py \
		tests/test_book_downloads.py::test_every_chapter_page_links_to_its_executed_notebook \
		-q -o addopts="" -p no:cacheprovider

test: install
	$(PY) -m ruff check autoencoders tests benchmarks tools book/_ext
	AUTOENCODERS_FAST=$${AUTOENCODERS_FAST:-1} $(PY) -m pytest

lint: install
	$(PY) -m ruff check .

# Student copies of the assignment notebooks (solution cells replaced by skeletons).
assignments: install
	$(PY) tools/make_assignments.py --out assignments/

# The benchmark compares with Pyro's SVI too, so it installs the `bench` extra (pyro-ppl).
bench: EXTRAS = dev,bench
bench: install
	$(PY) -m benchmarks.vae_speed --epochs 5 --repeats 3

# Reader-first check of the built book (run `make book` first): a full-page screenshot of
# every page at the readers' 1,300 px, and a report of code lines and formulas wider than
# the column, shrunk and uncaptioned images, and widget outputs (_build/page_check).
# It drives headless Chromium through Playwright (the `pagecheck` extra), which CI does not
# have: install the browser with `apt-get install chromium`, never `playwright install`.
page-check: EXTRAS = dev,pagecheck
page-check: install
	$(PY) tools/page_check.py _build/html --out _build/page_check

# Retrain every model of the zoo (autoencoders/zoo) from scratch, two at a time with one
# thread each (about 2 hours on 2 CPU cores); interrupted runs resume from _build/zoo.
ZOO_A = ch7-adagvae-k1-seed0 ch7-adagvae-k1-seed1 ch7-adagvae-k1-seed2 ch7-adagvae-krandom-seed0 ch6-betavae-b16-seed0
ZOO_B = ch7-betavae-b1-seed0 ch7-betavae-b1-seed1 ch7-betavae-b1-seed2 ch6-betavae-b4-seed0 ch6-betavae-b8-seed0
pretrained: install
	OMP_NUM_THREADS=1 $(PY) -m autoencoders.pretrained train $(ZOO_A) --work _build/zoo & \
	OMP_NUM_THREADS=1 $(PY) -m autoencoders.pretrained train $(ZOO_B) --work _build/zoo; wait

clean:
	rm -rf _build .pytest_cache
