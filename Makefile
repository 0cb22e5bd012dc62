# mmtrack_kd: one-command set-up, demo and tests.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip
STAMP := $(VENV)/.mmtrack_kd-installed
# Where torch comes from. Empty: pip's default (a CPU build where the
# machine provides one, else PyPI's CUDA build of several GB). For the CPU
# build from PyTorch's own index: make install TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
TORCH_INDEX_ARG := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)
# Any change to these files re-runs the install.
INSTALL_INPUTS := setup.py Makefile requirements/runtime.txt requirements/tests.txt

.PHONY: install demo test lint mutation clean-venv

install: $(STAMP)

$(STAMP): $(INSTALL_INPUTS)
	@set -e; \
	step() { echo "[install] $$1"; }; \
	fail() { echo "[install] FAILED at step: $$1" >&2; exit 1; }; \
	if [ ! -x $(BIN)/python ]; then step "create $(VENV)"; $(PY) -m venv $(VENV) || fail "create venv"; fi; \
	step "torch 2.13.0"; $(PIP) install -q $(TORCH_INDEX_ARG) torch==2.13.0 || fail "torch"; \
	step "build tools"; $(PIP) install -q "setuptools<70" ninja wheel || fail "build tools"; \
	step "mmengine"; $(PIP) install -q "mmengine==0.10.7" || fail "mmengine"; \
	if ! $(BIN)/python -c "import mmcv, mmcv.ops; assert mmcv.__version__=='2.1.0'" >/dev/null 2>&1; then \
	  step "mmcv 2.1.0 with ops (first build takes about 8 minutes on 2 cores; cached afterwards)"; \
	  MMCV_WITH_OPS=1 MAX_JOBS=2 $(PIP) install -q --no-build-isolation "mmcv==2.1.0" || fail "mmcv"; \
	fi; \
	step "runtime requirements"; $(PIP) install -q -r requirements/runtime.txt || fail "runtime requirements"; \
	step "test requirements"; $(PIP) install -q -r requirements/tests.txt || fail "test requirements"; \
	step "mmtrack_kd (editable)"; $(PIP) install -q --no-build-isolation --no-deps -e . || fail "mmtrack_kd"; \
	$(BIN)/python -c "import mmcv.ops, mmdet.models, mmtrack_kd" || fail "import check"; \
	touch $(STAMP); step "done"

demo: install
	$(BIN)/python tools/demo/run_demo.py

test: install
	$(BIN)/python -m pytest -q tests

lint: install
	$(BIN)/ruff check .

# Mutation testing of the three loss files (docs/testing.md); not part of
# `make test`: about 2-4 minutes on one core.
mutation: install
	$(PIP) install -q "mutmut==3.8.1"
	VENV=$(VENV) tools/dev/mutation.sh

clean-venv:
	rm -rf $(VENV)
