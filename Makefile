.PHONY: check lint types structure test format bench bench-cpu

VENV ?= .venv
PY := $(VENV)/bin/python

check: lint types structure

# Imports flow adapters -> services -> domain: no adapter reaches the composition root, the
# runtime or the CLI; domain and services read the time only through the clock port, and no
# setting from the environment (config.Settings does).
structure:
	@! grep -rnE '^\s*(from|import) tawasol\.(composition|runtime|cli)\b' src/tawasol/adapters \
		|| (echo "adapters must not import the composition root, the runtime or the CLI"; false)
	@! grep -rnE 'datetime\.(now|utcnow|today)|date\.today|\btime\.(time|monotonic|perf_counter)\b|\bos\.(environ|getenv)|^\s*(import os|import time|from (os|time) import)' \
		src/tawasol/domain src/tawasol/services \
		|| (echo "domain and services read no wall clock and no environment (use the clock port)"; false)

lint:
	$(PY) -m ruff check src tests bench
	$(PY) -m ruff format --check src tests bench

types:
	$(PY) -m mypy

format:
	$(PY) -m ruff format src tests bench
	$(PY) -m ruff check --fix src tests bench

test:
	$(PY) -m pytest

# In-process decisions, then SIP calls/s of the whole stack against bare Kamailio on this
# machine (needs kamailio and sipp; under 10 minutes; prints Markdown).
bench:
	$(PY) bench/run_all.py

# The brain's CPU per call in process (bench/brain_per_call.py), this tree
# against BASE, a worktree of another commit with its own .venv: make bench-cpu BASE=../base
BASE ?=
bench-cpu:
	$(PY) bench/brain_per_call.py $(if $(BASE),--tree $(BASE))
