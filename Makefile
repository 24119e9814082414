.PHONY: check lint types test format bench

VENV ?= .venv
PY := $(VENV)/bin/python

check: lint types

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
