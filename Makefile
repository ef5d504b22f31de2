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
# runs the unit tests on each. Without the sandbox's pytest plugin (which reads RDSIAM_BUILD),
# the collection's path is given to pytest directly, so a private build is the one tested.
COMPAT_CORES := 2.19 2.20

.PHONY: help demo test venv install build sanity pytest compat lint molecule sandbox-up sandbox-down sandbox-status clean

help:
	@echo "make demo            onboard a person onto the sandbox fleet with the real playbook, log in as them, audit the fleet"
	@echo "make test            sanity + unit + integration tests (installs what it needs)"
	@echo "make sandbox-up | sandbox-down | sandbox-status"

# Onboards a demo person onto the whole sandbox fleet with the real playbook, logs in as them, audits the fleet, stops the sandbox.
demo: install
	@scripts/demo

# molecule before pytest, so that pytest's counts stay the last lines `make test` prints.
test: compat lint
	scripts/sanity
	$(MAKE) --no-print-directory molecule
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

# ansible-lint and molecule run with the venv first on PATH (molecule calls ansible-playbook by
# name) and the built collection on ANSIBLE_COLLECTIONS_PATH. ANSIBLE_HOME under the build dir
# gives every build its own molecule scratch dirs, so two builds never share a scenario's state.
ANSIBLE_TOOLS_ENV := PATH="$(VENV)/bin:$$PATH" ANSIBLE_HOME="$(BUILD)/ansible-home"

# Offline: nothing is downloaded; modules and roles resolve from the built collection.
lint: venv install
	$(ANSIBLE_TOOLS_ENV) $(VENV)/bin/ansible-lint --offline --profile production roles playbooks extensions/molecule

# Every scenario under extensions/molecule/, each against a private sandbox of its own. All of
# them run (`molecule test --all` stops at the first failure); the failed ones are named at the end.
molecule: venv install
	@failed=""; \
	for scenario in $$(cd extensions/molecule && ls -d */molecule.yml | cut -d/ -f1); do \
	  $(ANSIBLE_TOOLS_ENV) $(VENV)/bin/molecule test -s $$scenario || failed="$$failed $$scenario"; \
	done; \
	if [[ -n $$failed ]]; then echo "molecule: failed:$$failed" >&2; exit 1; fi

compat: install
	@for core in $(COMPAT_CORES); do \
	  venv=$(BUILD)/venv-core-$$core; \
	  test -x $$venv/bin/python || $$(scripts/find-python) -m venv $$venv; \
	  $$venv/bin/python -m pip install --quiet "ansible-core~=$$core.0" -r requirements.txt pytest; \
	  echo "unit tests on ansible-core $$($$venv/bin/python -c 'import ansible; print(ansible.__version__)'):"; \
	  $$venv/bin/python -m pytest -q -o addopts= -o "pythonpath=. $(COLLECTIONS)" -p no:cacheprovider tests/unit || exit 1; \
	done

sandbox-up: venv
	@$(PY) -m sandbox up

sandbox-down: venv
	@$(PY) -m sandbox down

sandbox-status: venv
	@$(PY) -m sandbox status

clean: sandbox-down
	rm -rf $(BUILD) $(VENV)
