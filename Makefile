# vitkit — the two commands a newcomer needs:
#   make run    set up, then run the whole workshop headless on the embedded dataset
#   make test   set up, then run the test suite (unit tests and notebooks)
#
# By default everything goes into a fresh virtual environment, .venv (python3 -m venv).
# On an SDAA machine the vendor's torch (built with torch_sdaa) must never be replaced:
#   conda activate torch_env && KIT_PYTHON=$(which python) make run
# installs into that interpreter instead, with the installed torch/torchvision pinned as
# pip constraints so that no dependency can pull in another torch.

SHELL := /bin/bash
PYTHON3 ?= python3
VENV ?= .venv
RUN_NAME ?= workshop
ARGS ?=

ifdef KIT_PYTHON
PY := $(KIT_PYTHON)
STAMP := .kit-setup.stamp
else
PY := $(VENV)/bin/python
STAMP := $(VENV)/.kit-setup.stamp
endif
CONSTRAINTS := .kit-constraints.txt

# make lab: JupyterLab on a working copy of the notebooks (see README, "make lab"), with the settings in
# lab-settings/ (no news or update pop-ups). LAB_DIR sits one level below the repository, as notebooks/ does,
# so the notebooks' relative default paths (../data/digits, ../runs/notebooks) mean the same from there.
LAB_DIR ?= lab
LAB_ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: setup run test test-fast test-browser lab bench clean help

help:
	@echo "make run      set up and run the whole workshop headless (results in runs/$(RUN_NAME)/)"
	@echo "make test     set up and run every test, notebooks included"
	@echo "make setup    only the set-up (.venv, or KIT_PYTHON=/path/to/python)"
	@echo "make lab      open JupyterLab on your working copy of the notebooks ($(LAB_DIR)/)"
	@echo "make test-browser  run the notebooks in JupyterLab in headless Chromium (needs chromium)"
	@echo "make bench    run the benchmarks in bench/"

setup: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON3) -m venv $(VENV)

ifndef KIT_PYTHON
$(STAMP): $(VENV)/bin/python
endif
$(STAMP): pyproject.toml
	@# Pin whatever torch/torchvision the interpreter already has (the SDAA case), so pip keeps them.
	$(PY) -c "import importlib.util as u, importlib.metadata as m; print('\\n'.join(f'{p}=={m.version(p)}' for p in ('torch', 'torchvision') if u.find_spec(p)))" > $(CONSTRAINTS)
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install -c $(CONSTRAINTS) -e ".[test,lab]"
	@touch $@

run: setup
	$(PY) -m kit workshop --out runs/$(RUN_NAME) $(ARGS)

test: setup
	$(PY) -m pytest -n 2 tests $(ARGS)
	$(PY) -m pytest notebooks $(ARGS)

lab: setup
	@mkdir -p $(LAB_DIR)
	@for nb in notebooks/*.ipynb; do copy="$(LAB_DIR)/$${nb##*/}"; \
	  if [ ! -e "$$copy" ]; then cp "$$nb" "$$copy" && echo "$$copy: your copy of $$nb"; \
	  elif [ "$$nb" -nt "$$copy" ]; then echo "$$copy: $$nb has changed since you copied it (delete $$copy for the new one)"; fi; \
	done
	$(PY) -m jupyter lab $(LAB_ROOT_FLAG) --LabApp.app_settings_dir="$(CURDIR)/lab-settings" $(LAB_DIR)/

# The notebooks in JupyterLab in a real (headless) Chromium; the browser is the system's (see README).
$(STAMP).browser: $(STAMP)
	$(PY) -m pip install -c $(CONSTRAINTS) -e ".[test,lab,browser]"
	@touch $@

test-browser: $(STAMP).browser
	$(PY) -m pytest --browser tests/browser $(ARGS)

bench: setup
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .kit-setup.stamp $(CONSTRAINTS) *.egg-info .pytest_cache
