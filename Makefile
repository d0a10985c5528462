# The two commands a newcomer runs: `make demo` and `make test`. Both set up .venv/ on first use.
VENV := .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= demo_out

.PHONY: venv demo demo-quick test lint bench clean

venv:
	@bash scripts/bootstrap.sh

demo: venv
	$(VENV)/bin/vqedit demo --out $(DEMO_OUT)

demo-quick: venv
	$(VENV)/bin/vqedit demo --out $(DEMO_OUT) --quick

test: venv
	$(PY) -m ruff check .
	$(PY) -m pytest -q

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: venv
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .ruff_cache
