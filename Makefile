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

# Extra pip constraints for the kit's install, space-separated specifiers (make test-floor passes numpy<2).
KIT_CONSTRAINTS_EXTRA ?=

ifdef KIT_PYTHON
PY := $(KIT_PYTHON)
# Which environment KIT_PYTHON is, as a short key (its prefix, its Python, its torch and torchvision, and the extra
# constraints): the set-up stamp and the constraints are kept per key, so another interpreter, or the same one with
# another torch, is set up again, and no KIT_PYTHON run shares them with another or with .venv. The second word is
# "stale" when the kit that interpreter imports is not this clone's (never installed, or another clone since).
KIT_ENV := $(shell '$(KIT_PYTHON)' -I -c "import sys, os, hashlib, importlib.util as u, importlib.metadata as m; \
  v = lambda p: m.version(p) if u.find_spec(p) else '-'; k = u.find_spec('kit'); \
  here = bool(k and k.origin) and os.path.dirname(os.path.dirname(os.path.realpath(k.origin))) == os.path.realpath(sys.argv[1]); \
  print(hashlib.sha1(repr((os.path.realpath(sys.prefix), sys.version, v('torch'), v('torchvision'), sys.argv[2:])).encode()).hexdigest()[:12], \
  'ok' if here else 'stale')" '$(CURDIR)' $(foreach c,$(KIT_CONSTRAINTS_EXTRA),'$(c)'))
ifeq ($(words $(KIT_ENV)),2)
KIT_DIR := .kit-setup/$(word 1,$(KIT_ENV))
else
$(error KIT_PYTHON=$(KIT_PYTHON) does not run as a Python interpreter)
endif
STAMP := $(KIT_DIR)/setup.stamp
CONSTRAINTS := $(KIT_DIR)/constraints.txt
else
PY := $(VENV)/bin/python
STAMP := $(VENV)/.kit-setup.stamp
CONSTRAINTS := $(VENV)/.kit-constraints.txt
endif

# The SDAA floor (make test-floor): the test suite in an environment with what the ModelZoo images ship, built once
# outside the clone by .ci/floor-env.sh. FLOOR_PYTHON: the Python 3.10 to build it from (default: found).
# FLOOR_CONSTRAINTS: caps for the floor's install only (never in pyproject.toml, whose dependencies are floors).
FLOOR_PYTHON ?=
FLOOR_TORCH ?= 2.2.0
FLOOR_TORCHVISION ?= 0.17.0
FLOOR_NUMPY ?= numpy<2
FLOOR_ENV ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/vitkit/floor-py310-torch$(FLOOR_TORCH)
FLOOR_CONSTRAINTS ?= $(FLOOR_NUMPY)


# A room without internet (docs/workshop-room.md): `make wheelhouse [WHEELHOUSE=dir]` (online, once) puts every wheel
# `make setup` installs into one folder with a manifest (tools/wheelhouse.py); `make setup WHEELHOUSE=dir` then
# installs from that folder only. With KIT_PYTHON the environment's own torch and torchvision stay out of it.
WHEELHOUSE ?=
WHEELHOUSE_EXTRAS ?= test,lab
ifdef WHEELHOUSE
PIP = $(PY) tools/wheelhouse.py pip $(WHEELHOUSE) --
else
PIP = $(PY) -m pip
endif

# make lab: JupyterLab on a working copy of the notebooks (see README, "make lab"), with the settings in
# lab-settings/ (no news or update pop-ups). LAB_DIR sits one level below the repository, as notebooks/ does,
# so the notebooks' relative default paths (../data/digits, ../runs/notebooks) mean the same from there.
LAB_DIR ?= lab
LAB_ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: wheelhouse test-offline setup run test test-fast test-floor test-browser lab lab-update bench clean help FORCE setup-emulator test-emulator \
	test-emulator-stacks

help:
	@echo "make run      set up and run the whole workshop headless (results in runs/$(RUN_NAME)/)"
	@echo "make test     set up and run every test, notebooks included"
	@echo "make test-floor  the same tests on the SDAA floor: Python 3.10, torch $(FLOOR_TORCH), torchvision $(FLOOR_TORCHVISION), $(FLOOR_NUMPY)"
	@echo "              (its environment is built once, in $(FLOOR_ENV))"
	@echo "make test-fast  the unit tests without the slow ones (while editing)"
	@echo "make setup    only the set-up (.venv, or KIT_PYTHON=/path/to/python); WHEELHOUSE=dir: offline, from that folder"
	@echo "make wheelhouse  every wheel make setup installs, into WHEELHOUSE (default wheelhouse/), for a room offline"
	@echo "make test-offline  a fresh clone set up and run from a wheelhouse in a network namespace (root)"
	@echo "make lab      open JupyterLab on your working copy of the notebooks ($(LAB_DIR)/)"
	@echo "make lab-update  merge the teacher's changes to notebooks/ into your copies, keeping your answers"
	@echo "make test-browser  run the notebooks in JupyterLab in headless Chromium (needs chromium)"
	@echo "make bench    run the benchmarks in bench/"
	@echo "make setup-emulator  put the emulated SDAA card (emulator/, importable as torch_sdaa) into that environment"
	@echo "make test-emulator   set it up, then run tests/emulator (every sdaa code path on the emulated card)"
	@echo "make test-emulator-stacks  the same on the SDAA floors too (torch $(FLOOR_TORCH) and $(FLOOR2_TORCH), Python 3.10)"

setup: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON3) -m venv $(VENV)

ifndef KIT_PYTHON
$(CONSTRAINTS): $(VENV)/bin/python
else ifeq ($(word 2,$(KIT_ENV)),stale)
$(STAMP): FORCE
endif
$(CONSTRAINTS): pyproject.toml
	@# Pin whatever torch/torchvision the interpreter already has (the SDAA case), so pip keeps them.
	@mkdir -p $(@D)
	$(PY) -c "import importlib.util as u, importlib.metadata as m; print('\\n'.join(f'{p}=={m.version(p)}' for p in ('torch', 'torchvision') if u.find_spec(p)))" > $@.tmp
	$(if $(KIT_CONSTRAINTS_EXTRA),@printf '%s\n' $(foreach c,$(KIT_CONSTRAINTS_EXTRA),'$(c)') >> $@.tmp)
	@mv -f $@.tmp $@

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PIP) install --upgrade pip >/dev/null
	$(PIP) install -c $(CONSTRAINTS) -e ".[test,lab]"
	@touch $@

FORCE:

ifdef KIT_PYTHON
wheelhouse: $(CONSTRAINTS)
	$(KIT_PYTHON) tools/wheelhouse.py make $(or $(WHEELHOUSE),wheelhouse) --extras $(WHEELHOUSE_EXTRAS) \
	  --keep-installed --constraints $(CONSTRAINTS)
else
wheelhouse:
	$(PYTHON3) tools/wheelhouse.py make $(or $(WHEELHOUSE),wheelhouse) --extras $(WHEELHOUSE_EXTRAS)
endif

# The offline flow as a room meets it (needs root for a network namespace): a fresh clone, no network, `make setup
# WHEELHOUSE=...` and `make run ARGS=--quick`. The wheelhouse is made once and kept outside the clone.
test-offline:
	.ci/test-offline.sh

run: setup
	$(PY) -m kit workshop --out runs/$(RUN_NAME) $(ARGS)

# The notebooks run twice, and each run checks what the other cannot: nbval executes notebooks/ with their own
# default parameters, as a learner's JupyterLab does, and reports per cell; tests/workshop/test_workshop.py runs them
# through `kit workshop` (papermill, injected parameters, the make-run route) and checks what that writes
# (summary.json, summary.md, figures, the notebooks' order). ruff first: it takes a second; then lint-imports, the
# layer contracts of pyproject.toml's [tool.importlinter] (ARCHITECTURE.md), through $(PY) so that KIT_PYTHON's
# environment checks them (import-linter has no `python -m` entry, and none for Python 3.9, where it is skipped and
# says so). tests/emulator is make test-emulator's (it needs the emulated card, which make setup never installs).
test: setup
	$(PY) -m ruff check .
	@if $(PY) -c "import sys; sys.exit(sys.version_info < (3, 10))"; then \
	  $(PY) -c "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())" --no-cache; \
	else echo "lint-imports skipped: import-linter needs Python >= 3.10"; fi
	$(PY) -m pytest -n 2 tests --ignore=tests/emulator $(ARGS)
	$(PY) -m pytest notebooks $(ARGS)

# Feedback while editing: the unit tests without the ones marked slow (make test and CI run those too).
test-fast: setup
	$(PY) -m pytest -n 2 -m "not slow" tests $(ARGS)

# The SDAA floor: build (or reuse) its environment, then run the suite in it through the KIT_PYTHON route.
test-floor:
	@py=$$(FLOOR_PYTHON='$(FLOOR_PYTHON)' FLOOR_TORCH='$(FLOOR_TORCH)' FLOOR_TORCHVISION='$(FLOOR_TORCHVISION)' \
	  FLOOR_NUMPY='$(FLOOR_NUMPY)' FLOOR_ENV='$(FLOOR_ENV)' .ci/floor-env.sh) && \
	echo "$(MAKE) test KIT_PYTHON=$$py KIT_CONSTRAINTS_EXTRA='$(FLOOR_CONSTRAINTS)'" && \
	$(MAKE) test KIT_PYTHON="$$py" KIT_CONSTRAINTS_EXTRA='$(FLOOR_CONSTRAINTS)'

# Each copy's upstream version is recorded in $(LAB_DIR)/.upstream/ (kit/workshop/labcopy.py); make lab-update merges the
# teacher's later changes into the copies with nbdime's three-way merge, keeping the learner's answers.
lab: setup
	$(PY) -m kit.workshop.labcopy copy $(LAB_DIR)
	$(PY) -m jupyter lab $(LAB_ROOT_FLAG) --LabApp.app_settings_dir="$(CURDIR)/lab-settings" $(LAB_DIR)/

# The notebooks in JupyterLab in a real (headless) Chromium; the browser is the system's (see README).
$(STAMP).browser: $(STAMP)
	$(PIP) install -c $(CONSTRAINTS) -e ".[test,lab,browser]"
	@touch $@

lab-update: setup
	$(PY) -m kit.workshop.labcopy update $(LAB_DIR)

test-browser: $(STAMP).browser
	$(PY) -m pytest --browser tests/browser $(ARGS)

bench: setup
	$(PY) bench/run_all.py

# The emulated SDAA card (emulator/): never part of `make setup`. It refuses to install where a real torch_sdaa
# is present; its C++ part is compiled once per torch into ~/.cache/vitkit/sdaa-emulator (outside the clone).
EMULATOR_FILES := $(wildcard emulator/pyproject.toml emulator/setup.py emulator/torch_sdaa/*.py \
	emulator/torch_sdaa/*/*.py emulator/torch_sdaa/csrc/*.cpp)
$(STAMP).emulator: $(STAMP) $(EMULATOR_FILES)
	@$(PY) emulator/torch_sdaa/_guard.py
	$(PIP) install -c $(CONSTRAINTS) ./emulator
	$(PY) -m torch_sdaa.build
	@touch $@

setup-emulator: $(STAMP).emulator

test-emulator: setup-emulator
	$(PY) -m pytest -n 2 tests/emulator $(ARGS)

# The second SDAA floor: the current TecoPyTorch line, torch 2.7.1 on Python 3.10 (modelzoo.md §1.6b).
FLOOR2_TORCH ?= 2.7.1
FLOOR2_TORCHVISION ?= 0.22.1
FLOOR2_ENV ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/vitkit/floor-py310-torch$(FLOOR2_TORCH)

# The emulator's tests on every SDAA stack: this environment's torch, then torch 2.2.0 and torch 2.7.1 on Python 3.10.
test-emulator-stacks: test-emulator
	@for stack in "$(FLOOR_TORCH) $(FLOOR_TORCHVISION) $(FLOOR_ENV)" "$(FLOOR2_TORCH) $(FLOOR2_TORCHVISION) $(FLOOR2_ENV)"; do \
	  set -- $$stack; \
	  py=$$(FLOOR_PYTHON='$(FLOOR_PYTHON)' FLOOR_TORCH=$$1 FLOOR_TORCHVISION=$$2 FLOOR_NUMPY='$(FLOOR_NUMPY)' \
	    FLOOR_ENV=$$3 .ci/floor-env.sh) || exit 1; \
	  echo "$(MAKE) test-emulator KIT_PYTHON=$$py KIT_CONSTRAINTS_EXTRA='$(FLOOR_CONSTRAINTS)'"; \
	  $(MAKE) test-emulator KIT_PYTHON="$$py" KIT_CONSTRAINTS_EXTRA='$(FLOOR_CONSTRAINTS)' ARGS='-m "not workshop"' \
	    || exit 1; \
	done

clean:
	rm -rf $(VENV) .kit-setup .kit-setup.stamp .kit-constraints.txt *.egg-info .pytest_cache
