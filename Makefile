# Every target sets itself up: a fresh clone needs only python3 (>= 3.11) and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
SERVE_PORT ?= 8000
WORKERS ?= 1
FIT ?= current

.PHONY: run test test-fast lint serve bench info clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.test: $(VENV)/.runtime requirements-test.txt
	$(PY) -m pip install -q -r requirements-test.txt
	touch $@

run: $(VENV)/.runtime
	$(PY) -m streamlit run app.py --server.port $(PORT)

# Test files spread over two workers (a file's tests stay together, sharing its fixtures), then
# the browser walks alone: their waits are for a dashboard on an otherwise idle machine. The
# slowest tests are listed at the end of each.
test: $(VENV)/.test
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=20 -m "not browser"
	$(PY) -m pytest -q --durations=5 -m browser

# The core maths and data, without fits, pages, browsers or servers: under 90 s.
test-fast: $(VENV)/.test
	$(PY) -m pytest -q -m "not slow and not app and not browser and not server"

lint: $(VENV)/.test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The HTTP service on 127.0.0.1:$(SERVE_PORT) for a saved fit: make serve FIT=KEY [WORKERS=2]
serve: $(VENV)/.runtime
	$(PY) -m bhm_core serve --fit $(FIT) --port $(SERVE_PORT) --workers $(WORKERS)

bench: $(VENV)/.runtime
	$(PY) bench/bench_cube.py

info: $(VENV)/.runtime
	$(PY) -m bhm_core info

clean:
	rm -rf $(VENV) data/cache data/fits
