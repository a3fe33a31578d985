# Group-Net FPGA toolkit. Two commands a user needs on a fresh machine:
#   make demo   set up, then train -> export -> build for a board -> report -> RTL
#               simulation -> deploy folder -> its driver on the simulator backend (in a
#               board-like venv), checking bit-exactness at every stage, on Fashion-MNIST;
#               then the same model's ECP5 bitstream for a ULX3S-85F with the open tools
#   make test   set up, then run the test suite (CI; `make test-all`: every variant too)
# Set-up steps are stamped: a second run only redoes what changed.

PYTHON      ?= python3.11
VENV        ?= .venv
# the boards' Python (3.10): on PATH, or pyenv's; else the main Python (reported)
BOARD_PYTHON ?= $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10*/bin/python3.10; do \
                  $$p -V >/dev/null 2>&1 && { echo $$p; break; }; done)
BOARD_VENV  ?= .venv-board
PY          := $(VENV)/bin/python
STAMPS      := .make
DEBS        := dataset-fashion-mnist verilator ccache
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=
# test processes (pytest-xdist; a test file stays in one, notebooks 01-04 together and in
# order: tests/conftest.py); the notebooks first, the longest chain, while tests fill the rest
PYTEST_JOBS ?= 2

DEMO_VARIANT ?= groupnet_cnv_s_k2
DEMO_EPOCHS  ?= 3
# distilled from the committed full-precision quarter-width model (README "Demo")
DEMO_TEACHER ?= models/zoo/fp_cnv_s.pt
DEMO_OUT     ?= out/demo
DEMO_BOARD   ?= pynq-z2
# the open-flow bitstream at the end of the demo (docs/bitstream.md); DEMO_ECP5= skips it.
# The zoo's weights of the demo model meet 100 MHz (benchmarks/results/ecp5_fashion-mnist.md);
# the demo trains its own, and constant weight ROMs become logic, so its timing varies with
# the training: the demo asks for a clock with a wide margin (demo-trained designs measured
# 61.6-76 MHz before the RTL's pipelining; none measured since)
DEMO_ECP5    ?= ulx3s-85f
DEMO_ECP5_MHZ ?= 65

.PHONY: all setup venv board-venv system demo test test-all results clean distclean help

help:
	@sed -n '1,4p' Makefile

setup: venv system

# ---- Debian packages (Fashion-MNIST, Verilator) ------------------------------------------
system: $(STAMPS)/system
$(STAMPS)/system: Makefile
	@mkdir -p $(STAMPS)
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@touch $@

# ---- Python venv: the pinned set in requirements.lock, installed --no-deps -------------
# (finn-plus 1.6.1 declares brevitas==0.13.0, which breaks on torch 2.13: README "Setup")
venv: $(STAMPS)/venv
$(STAMPS)/venv: requirements.lock pyproject.toml
	@mkdir -p $(STAMPS)
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

# ---- a board-like venv for the deploy package: PYNQ 3.0 images run Python 3.10 with
# pynq and numpy<2, no torch/onnx/finn (requirements-board.lock); tests run the driver in it
board-venv: $(STAMPS)/board-venv
$(STAMPS)/board-venv: requirements-board.lock
	@mkdir -p $(STAMPS)
	@[ -x $(BOARD_VENV)/bin/python ] || { \
	  py="$(BOARD_PYTHON)"; [ -n "$$py" ] || { py=$(PYTHON); \
	  echo "no python3.10 found: the board-like venv uses $$py"; }; $$py -m venv $(BOARD_VENV); }
	$(BOARD_VENV)/bin/python -m pip install -q --disable-pip-version-check \
	    -r requirements-board.lock
	@touch $@

# ---- the main job ------------------------------------------------------------------------
demo: setup board-venv
	@mkdir -p $(DEMO_OUT)
	$(VENV)/bin/groupnet train $(DEMO_VARIANT) --dataset fashion-mnist \
	    --epochs $(DEMO_EPOCHS) $(if $(DEMO_TEACHER),--teacher $(DEMO_TEACHER)) \
	    --out $(DEMO_OUT) --force
	$(VENV)/bin/groupnet export $(DEMO_OUT)/$(DEMO_VARIANT).pt \
	    -o $(DEMO_OUT)/$(DEMO_VARIANT).onnx -n 500 --force
	$(VENV)/bin/groupnet eval $(DEMO_OUT)/$(DEMO_VARIANT).onnx -n 1000
	$(VENV)/bin/groupnet build $(DEMO_OUT)/$(DEMO_VARIANT).onnx --board $(DEMO_BOARD) \
	    -o $(DEMO_OUT)/build --verify --force
	$(VENV)/bin/groupnet report $(DEMO_OUT)/build
	$(VENV)/bin/groupnet sim $(DEMO_OUT)/build -n 50
	$(VENV)/bin/groupnet deploy $(DEMO_OUT)/build -o $(DEMO_OUT)/deploy --force
	cd / && $(CURDIR)/$(BOARD_VENV)/bin/python $(abspath $(DEMO_OUT))/deploy/driver.py \
	    --exec_mode validate --batchsize 50
ifneq ($(DEMO_ECP5),)
	$(VENV)/bin/groupnet build $(DEMO_OUT)/$(DEMO_VARIANT).onnx --board $(DEMO_ECP5) \
	    --out $(DEMO_OUT)/build-ecp5 --force --quiet
	$(VENV)/bin/groupnet bitstream $(DEMO_OUT)/build-ecp5 --clock-mhz $(DEMO_ECP5_MHZ) -n 20
endif
	@echo "demo done: outputs in $(DEMO_OUT)/ (pictures: $(DEMO_OUT)/build/report/*.png)"

# `make test` (CI, under 30 min on 2 cores): every path end to end once; `make test-all`
# adds the tests marked `full` (every variant, width and second model of a path)
test: setup board-venv
	$(PY) -m pytest -n $(PYTEST_JOBS) --dist loadgroup --no-loadscope-reorder --durations=15 \
	    -m "not full" $(PYTEST_ARGS) notebooks tests

test-all: setup board-venv
	$(PY) -m pytest -n $(PYTEST_JOBS) --dist loadgroup --no-loadscope-reorder --durations=15 \
	    $(PYTEST_ARGS) notebooks tests

# the measured tables of benchmarks/results/ into README.md and docs/ (never by hand)
results: venv
	$(PY) benchmarks/render_docs.py

clean:
	rm -rf out runs .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(BOARD_VENV) $(STAMPS) *.egg-info
