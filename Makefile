# iqgate: `make test` and `make serve` (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.iqgate-installed
PYTEST_WORKERS ?= 2

.PHONY: test serve install lint clean

install: $(STAMP)

# torch and torchvision come first, pinned: pip takes them from this machine's disk.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[dev,cpu]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) tests

# The DICOM node on the shipped defaults (IQGATE_* settings or IQGATE_CONFIG=file.yaml),
# with the technologist's console on port 8081 unless IQGATE_CONSOLE_PORT says otherwise.
IQGATE_CONSOLE_PORT ?= 8081
serve: $(STAMP)
	IQGATE_CONSOLE_PORT=$(IQGATE_CONSOLE_PORT) $(VENV)/bin/iqgate $(if $(IQGATE_CONFIG),--config $(IQGATE_CONFIG)) serve

lint: $(STAMP)
	$(VENV)/bin/ruff check service tools tests

clean:
	rm -rf $(VENV) .pytest_cache
