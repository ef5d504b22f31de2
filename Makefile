# rdsiam.auth — development entry points. The two that matter: `make demo` and `make test`.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT := $(abspath .)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
BUILD := $(ROOT)/.build
COLLECTIONS := $(BUILD)/collections
VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
TARBALL := $(BUILD)/dist/rdsiam-auth-$(VERSION).tar.gz
SOURCES := $(shell git ls-files --cached --others --exclude-standard 2>/dev/null | grep -vE '^(sandbox|bench|scripts|\.ci)/')

export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help demo test venv install build sanity pytest sandbox-up sandbox-down sandbox-status clean

help:
	@echo "make demo            start the sandbox and show the fleet it stands in for"
	@echo "make test            sanity + unit + integration tests (installs what it needs)"
	@echo "make sandbox-up | sandbox-down | sandbox-status"

demo: venv
	$(PY) -m sandbox up
	@echo; echo "The sandbox fleet, as its (moto) RDS API describes it:"; echo
	$(PY) -m sandbox fleet
	@echo; echo "Point any AWS SDK and this collection at it with:  source sandbox/.state/env"
	@echo "Stop it with:  make sandbox-down"

test: venv install
	scripts/sanity
	$(PY) -m pytest

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || $$(scripts/find-python) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

build: $(TARBALL)

$(TARBALL): galaxy.yml $(SOURCES) | venv
	@mkdir -p $(BUILD)/dist
	$(VENV)/bin/ansible-galaxy collection build --force --output-path $(BUILD)/dist $(ROOT)

# Tests and sanity use the collection as ansible-galaxy packages it, installed where
# ANSIBLE_COLLECTIONS_PATH points, so a file missing from the build fails here first.
install: build
	rm -rf $(COLLECTIONS)/ansible_collections/rdsiam/auth
	$(VENV)/bin/ansible-galaxy collection install --force --offline -p $(COLLECTIONS) $(TARBALL) >/dev/null

sanity: venv install
	scripts/sanity

pytest: venv install
	$(PY) -m pytest

sandbox-up: venv
	$(PY) -m sandbox up

sandbox-down: venv
	$(PY) -m sandbox down

sandbox-status: venv
	$(PY) -m sandbox status

clean: sandbox-down
	rm -rf $(BUILD) $(VENV)
