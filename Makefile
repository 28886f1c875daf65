# The two commands of the README: `make demo` and `make test`.
# Each creates (or reuses) .venv and installs what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint bench test-slow clean postgres

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,postgres,agents,cli]'
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
	$(BIN)/pytest -q -rs

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

clean:
	rm -rf $(VENV) legato.db legato.db-wal legato.db-shm
