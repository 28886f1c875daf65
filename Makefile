# The two commands of the README: `make demo` and `make test`.
# Each creates (or reuses) .venv and installs what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint bench test-slow clean postgres browser test-ui ui screenshot

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,postgres,agents,cli,ui,otel]'
	@rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	$(BIN)/python examples/demo.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy

# The PostgreSQL tests run when a server answers (this target starts the local
# one if it can); they say why when they skip. CI makes a missing server fail.
test: lint
	-@$(MAKE) --no-print-directory postgres
	-@$(MAKE) --no-print-directory browser
	$(BIN)/pytest -q -rs -n 2

# The dashboard's tests alone (the browser ones drive Debian's Chromium with Playwright).
test-ui: $(STAMP)
	-@$(MAKE) --no-print-directory browser
	$(BIN)/pytest -q -rs tests/test_ui*.py

# The dashboard on the demo's store: `make demo` first.
ui: $(STAMP)
	$(BIN)/legato ui --store legato.db

# docs/dashboard.png, from the demo's workflow (runs the demo if legato.db is missing).
screenshot: $(STAMP)
	@test -f legato.db || $(BIN)/python examples/demo.py
	@$(MAKE) --no-print-directory browser
	$(BIN)/python docs/dashboard_screenshot.py legato.db docs/dashboard.png

test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python bench/run.py

# The PostgreSQL half of the tests: start the local server if it is down and
# make sure database `test` exists (CI runs this, then exports LEGATO_TEST_POSTGRES).
PG := -h 127.0.0.1 -U postgres
postgres:
	@pg_isready -q -h 127.0.0.1 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 100); do pg_isready -q -h 127.0.0.1 && break; sleep 0.2; done; \
	  pg_isready -h 127.0.0.1 || { echo "PostgreSQL did not start on 127.0.0.1:5432" >&2; exit 1; }
	@psql $(PG) -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 \
	  || createdb $(PG) test

# The browser the dashboard tests drive: Debian's Chromium (Playwright downloads none).
# Installing needs root; without it the browser tests skip and say why (in CI they fail).
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { apt-get update -q && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -q chromium >/dev/null; } \
	  || { echo "could not install Chromium (root needed): the browser tests will skip" >&2; exit 1; }

clean:
	rm -rf $(VENV) legato.db legato.db-wal legato.db-shm tests/artifacts
