# The two commands a newcomer runs: `make demo` and `make test`. Both set up .venv/ on first use.
VENV := .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= demo_out

.PHONY: venv demo demo-clip demo-quick test lint bench clean ofx install-ofx

venv:
	@bash scripts/bootstrap.sh

demo: venv
	$(VENV)/bin/vqedit demo --out $(DEMO_OUT)

CLIP ?= ../shared/clips/lp_d13.mp4
demo-clip: venv
	$(VENV)/bin/vqedit demo --clip $(CLIP) --out demo_$(notdir $(basename $(CLIP)))

demo-quick: venv
	$(VENV)/bin/vqedit demo --out $(DEMO_OUT) --quick

test: venv
	$(PY) -m ruff check .
	$(PY) -m pytest -q

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# The VQFaceEdit OpenFX bundle (docs/ofx.md): build/ofx/VQFaceEdit.ofx.bundle, bridge run by .venv's Python
OFX_PLUGIN_PATH ?= /usr/OFX/Plugins
ofx: venv
	cmake -S host_plugin/ofx -B build/ofx -DCMAKE_BUILD_TYPE=Release -DVQEDIT_PYTHON=$(abspath $(PY))
	cmake --build build/ofx -j 2

install-ofx: ofx
	mkdir -p "$(OFX_PLUGIN_PATH)"
	rm -rf "$(OFX_PLUGIN_PATH)/VQFaceEdit.ofx.bundle"
	cp -R build/ofx/VQFaceEdit.ofx.bundle "$(OFX_PLUGIN_PATH)/"
	@echo "installed $(OFX_PLUGIN_PATH)/VQFaceEdit.ofx.bundle"

bench: venv
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .ruff_cache
