# gps_ros: `make test` and `make train` do all set-up on a fresh machine.
# Steps leave stamps in .stamps/ so that re-running skips what is finished.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STAMPS := .stamps
BUILD := build
PREFIX := $(CURDIR)/install
PYVER := 3.11
SITE := $(PREFIX)/lib/python$(PYVER)/site-packages

# No DDS traffic may leave this machine; offscreen MuJoCo rendering.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl
# The per-time-step matrices are small (tens of rows): one BLAS thread is faster, and
# multi-threaded OpenBLAS stalls badly when the sim or another node holds a core.
export OPENBLAS_NUM_THREADS ?= 1

# Environment that runs what was built (not the source tree): the installed Python
# package (hand-written modules + generated interfaces), its type-support libraries,
# and the ament index that lists share/gps_ros.
RUN_ENV := PATH=$(CURDIR)/$(VENV)/bin:$$PATH \
	PYTHONPATH=$(SITE) \
	LD_LIBRARY_PATH=$(PREFIX)/lib:$$LD_LIBRARY_PATH \
	AMENT_PREFIX_PATH=$(PREFIX):$(CURDIR)/$(VENV) \
	PYTHONDONTWRITEBYTECODE=1
BUILD_ENV := PATH=$(CURDIR)/$(VENV)/bin:$$PATH \
	AMENT_PREFIX_PATH=$(CURDIR)/$(VENV) \
	CMAKE_PREFIX_PATH=$(CURDIR)/$(VENV)

SOURCES := CMakeLists.txt package.xml $(shell find msg srv action gps_ros launch config cmake -type f \
	! -name '*.pyc' ! -path '*/__pycache__/*' 2>/dev/null)

.PHONY: all test train build venv lock clean help
all: test

help:
	@echo "make test   set up everything, build, run the whole test suite"
	@echo "make train  set up everything, build, run the package's main job"
	@echo "make build  set up the venv and build/install the ROS 2 package into install/"

venv: $(STAMPS)/venv

$(STAMPS)/venv: requirements.lock
	@mkdir -p $(STAMPS)
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip==26.3
	$(VENV)/bin/python -m pip install --quiet -r requirements.lock
	$(VENV)/bin/python scripts/repair_cmake_paths.py $(VENV)
	@touch $(VENV)/COLCON_IGNORE $@

build: $(STAMPS)/built

$(STAMPS)/built: $(STAMPS)/venv $(SOURCES)
	$(BUILD_ENV) cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) \
		-DPython3_EXECUTABLE=$(CURDIR)/$(VENV)/bin/python -DBUILD_TESTING=OFF --log-level=WARNING > $(BUILD).log 2>&1 \
		|| { tail -40 $(BUILD).log; exit 1; }
	$(BUILD_ENV) cmake --build $(BUILD) -j2 >> $(BUILD).log 2>&1 || { tail -40 $(BUILD).log; exit 1; }
	rm -rf $(SITE)/gps_ros
	cmake --install $(BUILD) >> $(BUILD).log 2>&1 || { tail -40 $(BUILD).log; exit 1; }
	@touch $(BUILD)/COLCON_IGNORE $(PREFIX)/COLCON_IGNORE $@

test: build
	cd tests && $(RUN_ENV) $(CURDIR)/$(VENV)/bin/python -m pytest -q -p no:cacheprovider $(or $(PYTEST_ARGS),.)

# The training job: MDGPS on the simulated pr2_peg through the ROS 2 node graph (sim, controller,
# recorder, learner, status monitor), as `ros2 launch gps_ros train.launch.py` would start it.
TRAIN_CONFIG ?= config/train/mdgps_peg.yaml
# PYTHONSAFEPATH: the nodes start in this folder, whose gps_ros/ (sources, no built interfaces)
# must not shadow the installed package.
train: build
	$(RUN_ENV) PYTHONSAFEPATH=1 $(CURDIR)/$(VENV)/bin/python -m gps_ros.cli launch train sim:=true config:=$(TRAIN_CONFIG) $(TRAIN_ARGS)

lock:
	$(VENV)/bin/python scripts/lock_requirements.py > requirements.lock

clean:
	rm -rf $(BUILD) $(BUILD).log install $(STAMPS)
