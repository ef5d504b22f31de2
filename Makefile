# rdsiam.auth — development entry points. The two that matter: `make demo` and `make test`.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT := $(abspath .)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
# RDSIAM_BUILD may point elsewhere (make install RDSIAM_BUILD=/tmp/x) for a private copy.
RDSIAM_BUILD ?= $(ROOT)/.build
BUILD := $(RDSIAM_BUILD)
COLLECTIONS := $(BUILD)/collections
VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
TARBALL := $(BUILD)/dist/rdsiam-auth-$(VERSION).tar.gz

export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# ansible-core releases the collection supports besides the pinned toolchain's; `make test`
# runs the unit tests on each.
COMPAT_CORES := 2.19 2.20

.PHONY: help demo test venv install build sanity pytest compat sandbox-up sandbox-down sandbox-status clean

help:
	@echo "make demo            start the sandbox and show the fleet it stands in for"
	@echo "make test            sanity + unit + integration tests (installs what it needs)"
	@echo "make sandbox-up | sandbox-down | sandbox-status"

demo: venv
	@$(PY) -m sandbox up
	@echo; echo "The sandbox fleet, as its (moto) RDS API describes it:"; echo
	@$(PY) -m sandbox fleet
	@echo; echo "Point any AWS SDK and this collection at it with:  source sandbox/.state/env"
	@echo "Stop it with:  make sandbox-down"

test: compat
	scripts/sanity
	$(PY) -m pytest

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || $$(scripts/find-python) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

# Always rebuilt (about 2 s): tests must see the working tree as it is now.
build: venv
	@mkdir -p $(BUILD)/dist
	@$(VENV)/bin/ansible-galaxy collection build --force --output-path $(BUILD)/dist $(ROOT)

# Tests and sanity use the collection as ansible-galaxy packages it, installed where
# ANSIBLE_COLLECTIONS_PATH points, so a file missing from the build fails here first.
install: build
	@rm -rf $(COLLECTIONS)/ansible_collections/rdsiam/auth
	@$(VENV)/bin/ansible-galaxy collection install --force --offline -p $(COLLECTIONS) $(TARBALL) >/dev/null

sanity: venv install
	scripts/sanity

pytest: venv install
	$(PY) -m pytest

compat: install
	@for core in $(COMPAT_CORES); do \
	  venv=$(BUILD)/venv-core-$$core; \
	  test -x $$venv/bin/python || $$(scripts/find-python) -m venv $$venv; \
	  $$venv/bin/python -m pip install --quiet "ansible-core~=$$core.0" -r requirements.txt pytest; \
	  echo "unit tests on ansible-core $$($$venv/bin/python -c 'import ansible; print(ansible.__version__)'):"; \
	  $$venv/bin/python -m pytest -q -o addopts= -p no:cacheprovider tests/unit || exit 1; \
	done

sandbox-up: venv
	@$(PY) -m sandbox up

sandbox-down: venv
	@$(PY) -m sandbox down

sandbox-status: venv
	@$(PY) -m sandbox status

clean: sandbox-down
	rm -rf $(BUILD) $(VENV)
