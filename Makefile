# CXR Reader: one command to set up and run, one to set up and test.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test bench clean bundle-lite bundle-full smoke-lite smoke-full test-notorch bench-startup

# (Re)create the virtual environment and install the project with all its extras.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch 2.14.1 / torchvision 0.29.1 are the releases this project is tested with.
	$(PY) -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install --quiet -e ".[gui,test,training]"
	touch $(STAMP)

setup: $(STAMP)

# Classify the bundled sample study, writing a CSV and Grad-CAM PNGs under out/.
# The app's and the CLI's default, the averaged model (the one bundled model that meets the project's bar);
# MODEL=efficientnet-lite0 (or -b1) runs a single network, below the bar, for comparison.
MODEL ?= efficientnet-lite0-b1-average
run: setup
	$(VENV)/bin/cxr-classify resources/samples --model $(MODEL) --csv out/sample_results.csv --heatmap-dir out/sample_heatmaps --overwrite
	@echo "results: out/sample_results.csv, heat-maps: out/sample_heatmaps/"

test: setup
	cd $(CURDIR) && $(VENV)/bin/lint-imports
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

bench: setup
	$(PY) -m benchmarks.bench_engine

clean:
	rm -rf $(VENV) out .pytest_cache

# ---------------------------------------------------------------------------- distribution
# PyInstaller one-folder bundles in dist/ (packaging/README.md): lite = ONNX Runtime only, full = torch too.
PACKAGING_STAMP := $(VENV)/.installed-packaging
$(PACKAGING_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[gui,test,training,packaging]"
	touch $(PACKAGING_STAMP)

bundle-lite: $(PACKAGING_STAMP)
	$(PY) packaging/build.py lite

bundle-full: $(PACKAGING_STAMP)
	$(PY) packaging/build.py full

# Run a built bundle offscreen: sample study -> classification -> screenshot + PDF (outputs in out/smoke/).
smoke-lite: setup
	$(PY) packaging/smoke_test.py dist/cxr-reader-lite

smoke-full: setup
	$(PY) packaging/smoke_test.py dist/cxr-reader-full

# Time to window and to first result: source, and each bundle that is built.
bench-startup: setup
	$(PY) -m benchmarks.bench_startup

# The test suite in a virtual environment without torch, torchvision, timm or grad-cam (what the
# lite bundle carries): tests that need them skip with the reason.
NOTORCH ?= .venv-notorch
NOTORCH_PY := $(NOTORCH)/bin/python
NOTORCH_STAMP := $(NOTORCH)/.installed
$(NOTORCH_STAMP): pyproject.toml packaging/torch_free_requirements.py
	test -x $(NOTORCH_PY) || $(PYTHON) -m venv $(NOTORCH)
	$(NOTORCH_PY) -m pip install --quiet --upgrade pip
	$(NOTORCH_PY) packaging/torch_free_requirements.py > $(NOTORCH)/requirements.txt
	$(NOTORCH_PY) -m pip install --quiet -r $(NOTORCH)/requirements.txt
	$(NOTORCH_PY) -m pip install --quiet --no-deps -e .
	touch $(NOTORCH_STAMP)

test-notorch: $(NOTORCH_STAMP)
	@! $(NOTORCH_PY) -c "import torch" 2>/dev/null || { echo "$(NOTORCH) has torch installed"; exit 1; }
	QT_QPA_PLATFORM=offscreen $(NOTORCH_PY) -m pytest -q -p no:cacheprovider
