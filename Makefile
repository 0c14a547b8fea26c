# Two commands do all set-up on a fresh machine: `make report` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
WORKERS ?= 1
DATA ?= $(if $(CONVLADDER_DATA),$(CONVLADDER_DATA),data/cifar10)
TEX_PACKAGES := latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended poppler-utils

.PHONY: venv tex data report test notebooks lab clean clean-runs

venv: $(VENV)/.installed

# The exact torch versions are in requirements/torch.txt (the `torch` extra), nowhere else; Ray (the `cluster`
# extra) too, so that `make test` runs the cluster tests (tests/test_cluster.py) on a fresh machine.
$(VENV)/.installed: pyproject.toml requirements/torch.txt requirements/dev.txt requirements/cluster.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[torch,dev,cluster]'
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

# The whole profile (runs/$(PROFILE)/), its PDF exported to report/$(PROFILE).pdf and figures/$(PROFILE)/;
# WORKERS=2 trains two runs at a time, one thread each (the study profile on a 2-core CPU).
report: venv tex data
	$(VENV)/bin/convladder all --profile $(PROFILE) --data-dir $(DATA) --export --workers $(WORKERS)

test: venv tex
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -n auto --dist loadscope --no-loadscope-reorder

# Bring each notebook and its paired percent script (notebooks/*.py) into agreement, the newer one winning.
notebooks: venv
	$(VENV)/bin/jupytext --sync notebooks/*.py

# Open the notebooks in JupyterLab (an edit saved there also updates the paired .py).
lab: venv
	$(PY) -m pip install -q -e '.[torch,notebook]'
	$(VENV)/bin/jupyter lab notebooks/

# Caches only: trained runs are hours of work and stay. `make clean-runs` deletes runs/ (every profile trained
# there, not the archive in results/) when you mean it.
clean:
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache

clean-runs:
	rm -rf runs
