# Two commands do everything on a fresh machine:
#   make demo   set up, start the local stack and the services, and show a dossier's journey
#   make test   set up, start the local stack, and run the whole test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
LGSP   := $(VENV)/bin/lgsp

.PHONY: setup demo test bench chaos stack-start stack-stop stack-status stack-reset kafka-restart clean

# Virtualenv + pinned packages, re-done only when requirements.txt or pyproject.toml change.
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(LGSP) demo

test: setup stack-start
	$(PY) -m pytest -ra $(PYTEST_ARGS)

# Figures for this machine (not part of the tests): `make bench BENCH_ARGS="--rate 100"`.
bench: setup
	$(LGSP) bench $(BENCH_ARGS)

# Kill services, the broker and the database under load, then reconcile.
chaos: setup
	$(LGSP) chaos $(CHAOS_ARGS)

stack-start: setup
	$(LGSP) stack start

stack-stop: setup
	$(LGSP) stack stop

stack-status: setup
	$(LGSP) stack status

stack-reset: setup
	$(LGSP) stack reset

kafka-restart: setup
	$(LGSP) stack restart-kafka

clean: stack-stop
	rm -rf $(VENV) .lgsp
