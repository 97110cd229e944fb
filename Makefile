# CXR Reader: one command to set up and run, one to set up and test.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test bench clean

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
# The model is named explicitly: no bundled model meets the project's full bar yet, so none is
# the default (see resources/models/*.json, "notes").
MODEL ?= efficientnet-lite0
run: setup
	$(VENV)/bin/cxr-classify resources/samples --model $(MODEL) --csv out/sample_results.csv --cam-dir out/sample_cams
	@echo "results: out/sample_results.csv, heat-maps: out/sample_cams/"

test: setup
	cd $(CURDIR) && $(VENV)/bin/lint-imports
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

bench: setup
	$(PY) -m benchmarks.bench_engine

clean:
	rm -rf $(VENV) out .pytest_cache
