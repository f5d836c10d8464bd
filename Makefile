# Fresh machine: `make demo` (set up .venv, install, run the bundled sample) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PKGS := tesseract-ocr wordnet-base wordnet-sense-index chromium

.PHONY: setup apt demo test lint clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints-cpu.txt -e '.[all,dev]'
	touch $(STAMP)

setup: $(STAMP) apt

# Debian binaries: installed when run as root, otherwise the exact command is printed
apt:
	@if command -v tesseract >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1 && [ -f /usr/share/wordnet/index.sense ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS) >/dev/null; \
	else echo "missing Debian packages (tesseract: scanned pages; wordnet: METEOR; chromium: report tests): sudo apt-get install -y $(APT_PKGS)"; fi

demo: setup
	$(BIN)/mmskin demo

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

clean:
	rm -rf mmskin-demo .pytest_cache .ruff_cache benchmarks/_work
