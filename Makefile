# One command sets everything up and runs the whole suite: `make test`.
# torch 2.14.1 + torchaudio 2.11.0 are builds known to import together (TORCH_PINS; override it
# for other builds).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_PINS ?= torch==2.14.1 torchaudio==2.11.0
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install test demo clean

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=1 $(PY) -m pytest -q --durations=15 $(PYTEST_ARGS); \
	rc=$$?; if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; exit $$rc

demo: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) recipes/IEMOCAP/demo.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache
