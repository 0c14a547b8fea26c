# Two commands do all set-up on a fresh machine: `make report` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
DATA ?= $(if $(CONVLADDER_DATA),$(CONVLADDER_DATA),data/cifar10)
TEX_PACKAGES := latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended poppler-utils

.PHONY: venv tex data report test notebooks clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# TeX Live from Debian's packages, installed only when latexmk, pdflatex or pdftotext is missing.
tex:
	@if command -v latexmk >/dev/null && command -v pdflatex >/dev/null && command -v pdftotext >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TEX_PACKAGES); \
	elif command -v sudo >/dev/null && command -v apt-get >/dev/null; then \
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TEX_PACKAGES); \
	else \
		echo "TeX Live is missing and cannot be installed here: install latexmk, pdflatex (TeX Live) and pdftotext (poppler) yourself, e.g. 'apt-get install $(TEX_PACKAGES)'."; exit 1; \
	fi

data: venv
	$(VENV)/bin/convladder data --data-dir $(DATA)

# The whole ladder on the chosen profile; writes report/report.pdf and figures/.
report: venv tex data
	mkdir -p runs/$(PROFILE)
	$(VENV)/bin/papermill notebooks/run_all.ipynb runs/$(PROFILE)/run_all.ipynb \
		-p profile $(PROFILE) -p data_dir $(DATA) -p report_root .

test: venv tex
	$(PY) -m pytest -q

# Rewrite the .ipynb files from notebooks/build_notebooks.py (they are committed without outputs).
notebooks: venv
	$(PY) notebooks/build_notebooks.py

clean:
	rm -rf runs report/generated report/*.aux report/*.log report/*.fls report/*.fdb_latexmk report/*.out
