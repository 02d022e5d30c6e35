# Two commands do everything on a fresh machine:
#   make demo   set up, start the local stack and the services, and show a dossier's journey
#   make test   set up, start the local stack, and run the whole test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
LGSP   := $(VENV)/bin/lgsp

.PHONY: setup browser demo test unit lint bench chaos stack-start stack-stop stack-status stack-reset kafka-restart clean

# Virtualenv + pinned packages, re-done only when requirements.txt or pyproject.toml change.
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed

# Debian's Chromium, for the console's browser tests (Playwright drives it; it downloads no
# browser of its own). Installed once, with sudo when not root.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the console's browser tests"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }; }

demo: setup
	$(LGSP) demo

# The whole suite runs once, now; then the unit tier (every test that needs no stack) and the
# platform tests whose outcome depends on the clock (marked `instants`) run again with the
# whole platform's clock moved to each of these instants (LGSP_CLOCK_AT, see shared/clock.py
# and the README's "Time"), the four runs side by side (ops/instants.py): a Saturday just
# before midnight, the last minute of the year, the last working minute before Tết 2027, and
# one minute before quiet hours end on a Monday. `make test CLOCK_INSTANTS=` skips them.
# The lint and type gate runs first.
CLOCK_INSTANTS ?= 2026-11-28T23:59:00+07:00 2026-12-31T23:59:00+07:00 2027-02-03T16:59:00+07:00 2027-01-04T06:59:00+07:00

test: setup browser lint stack-start
	$(PY) -m pytest -ra $(PYTEST_ARGS)
	$(PY) -m ops.instants $(CLOCK_INSTANTS)

# The fast loop: every test that needs no stack, in seconds.
unit: setup
	$(PY) -m pytest -q -m unit $(PYTEST_ARGS)

# ruff (lint and format) over everything, mypy over shared/ and services/ (pyproject.toml).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

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
