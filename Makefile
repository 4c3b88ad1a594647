# lvmcls: set-up, chapter execution, the book and the tests. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON  ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PROFILE ?= ci
# Checkpoints of this checkout live in _build (make clean empties them); set LVMCLS_CACHE to share them.
export LVMCLS_CACHE ?= $(CURDIR)/_build/cache

CHAPTERS := $(sort $(wildcard notebooks/*.py))
EXECUTED := $(patsubst notebooks/%.py,_build/executed/notebooks/%.ipynb,$(CHAPTERS))
SMOKED   := $(patsubst notebooks/%.py,_build/smoke/notebooks/%.ipynb,$(CHAPTERS))
LIBRARY  := $(wildcard lvmcls/*.py) $(wildcard lvmcls/registry/*.toml)
MATHJAX  := book/vendor/node_modules/mathjax/es5/tex-chtml.js
STAGE    := _build/src

.PHONY: help install data pairs execute smoke book test unit sync bench sweep merge long long-power gpu-pack full-gpu clean
help:
	@echo "make install   create $(VENV) and install lvmcls with the book and test extras (CI pins: constraints/ci.txt)"
	@echo "make data      fetch MNIST, Fashion-MNIST and CIFAR-10 into the data cache (LVMCLS_DATA)"
	@echo "make pairs     check in seconds that every notebooks/*.ipynb matches its .py (else: make sync)"
	@echo "make execute   execute every chapter with papermill (PROFILE=$(PROFILE)) into _build/executed"
	@echo "make smoke     execute every chapter in the smoke profile (the full networks, a few steps)"
	@echo "make book      execute the chapters and build the HTML book into _build/html"
	@echo "make test      make book, then the test suite (unit tests, chapters, book, determinism)"
	@echo "make unit      the unit tests alone (no chapter execution)"
	@echo "make sync      re-pair notebooks/*.py with their .ipynb (jupytext)"
	@echo "make bench     the speed benchmarks in bench/"
	@echo "make sweep     run a grid of chapter executions (GRID=file.toml, SWEEP=\"options\"), locally or on Slurm"
	@echo "make merge     mean ± std over the sweep's seeds into results/full/ (the scorecards' full column)"
	@echo "make long      the powered decisions on 2 CPU cores, resumable, each seed's record committed at once"
	@echo "               (CHAPTERS=03 for one chapter; results/long/); make long-power: the seeds, from the ci pilot"
	@echo "make gpu-pack  .pack/: the data, the corruption wheel and the commit a GPU machine without network needs"
	@echo "               (there: bash bench/full_profiles.sh STEM ...; see results/full/README.md)"
	@echo "make full-gpu  on the GPU machine (BUDGET_S=600): the full profiles, stalest first, each if it fits"

install: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml constraints/ci.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints/ci.txt -e ".[book,test,shift]"
	touch $@

$(MATHJAX): book/vendor/package.json
	cd book/vendor && (npm ci --no-audit --no-fund 2>/dev/null || npm install --no-audit --no-fund)
	touch $@

data: install
	$(BIN)/python -m lvmcls.data fetch

# A stale .ipynb (a .py edited without `make sync`) fails here, in seconds, before any chapter runs.
pairs: _build/pairs.ok
_build/pairs.ok: $(CHAPTERS) $(CHAPTERS:.py=.ipynb) _toc.yml | install
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_notebooks.py
	@mkdir -p $(@D) && touch $@

# LVMCLS_PROGRESS=0: no progress bars in the executed chapters (the book removes stderr anyway).
execute: $(EXECUTED)
_build/executed/notebooks/%.ipynb: notebooks/%.ipynb $(LIBRARY) _build/pairs.ok | install data
	@mkdir -p $(@D)
	cd notebooks && LVMCLS_PROGRESS=0 ../$(BIN)/papermill --no-progress-bar -k python3 -p profile $(PROFILE) \
		$*.ipynb $(CURDIR)/$@.tmp.ipynb
	mv $@.tmp.ipynb $@

# The smoke profile: every chapter end to end with the full profile's networks for a few steps, so the GPU
# path's code runs in CI on a CPU. Its results go to results/smoke/ (not committed) and its checkpoints to
# their own cache.
smoke: $(SMOKED)
_build/smoke/notebooks/%.ipynb: notebooks/%.ipynb $(LIBRARY) _build/pairs.ok | install data
	@mkdir -p $(@D)
	cd notebooks && LVMCLS_PROGRESS=0 LVMCLS_CACHE=$(CURDIR)/_build/smoke/cache ../$(BIN)/papermill \
		--no-progress-bar -k python3 \
		-p profile smoke $*.ipynb $(CURDIR)/$@.tmp.ipynb
	mv $@.tmp.ipynb $@

# The staged chapters' papermill-injected parameters cell is tagged remove-cell: `setup` prints its values.
book: _build/html/index.html
_build/html/index.html: $(EXECUTED) $(MATHJAX) $(LIBRARY) $(wildcard lvmcls/registry/*.toml) _config.yml _toc.yml $(shell find book -path book/vendor -prune -o -type f -print) $(wildcard results/full/*.json) $(wildcard results/long/*.json)
	rm -rf $(STAGE) && mkdir -p $(STAGE)/notebooks $(STAGE)/_extra
	cp _config.yml _toc.yml $(STAGE)/
	tar --exclude=book/vendor -cf - book | tar -xf - -C $(STAGE)
	$(BIN)/python -m lvmcls.ledger $(STAGE)/book/claims.md
	cp $(EXECUTED) $(STAGE)/notebooks/
	$(BIN)/python -m lvmcls.notebook remove-injected $(STAGE)/notebooks/*.ipynb
	cp -r book/vendor/node_modules/mathjax/es5 $(STAGE)/_extra/mathjax
	rm -rf _build/html
	$(BIN)/jupyter-book build $(STAGE) --path-output _build/jb --warningiserror --keep-going
	mv _build/jb/_build/html _build/html && rm -rf _build/jb
	@echo "The book: file://$(CURDIR)/_build/html/index.html"

# The suite, then nbval in lax mode: chapters re-executed with an empty checkpoint cache (so their models are
# trained again from the same seed) must print the same `# NBVAL_CHECK_OUTPUT` cells as the published run.
# Re-executing doubles a chapter's time, so CI checks the chapters in NBVAL_CHAPTERS; `make test
# NBVAL_CHAPTERS="$$(ls notebooks/*.py)"` checks them all.
NBVAL_CHAPTERS ?= notebooks/01_softmax_probabilities.py notebooks/02_variational_classification.py
test: book smoke
	cache=$$(mktemp -d $(CURDIR)/_build/nbval-cache.XXXX) && \
	status=0 && LVMCLS_CACHE=$$cache $(BIN)/python -m pytest tests --nbval-lax \
		$(patsubst notebooks/%.py,_build/executed/notebooks/%.ipynb,$(NBVAL_CHAPTERS)) \
	|| status=$$?; rm -rf $$cache; exit $$status

# The unit tests need neither the executed chapters nor the data sets.
unit: install
	$(BIN)/python -m pytest -m "not book and not data"

sync: install
	$(BIN)/jupytext --sync $(CHAPTERS)

bench: install
	$(BIN)/python bench/data_loader.py
	$(BIN)/python bench/vc_overhead.py
	$(BIN)/python bench/tree_softmax.py
	$(BIN)/python bench/checkpoint_overhead.py
	$(BIN)/python bench/ssvae_enumeration.py
	$(BIN)/python bench/mixture_density.py
	$(BIN)/python bench/vae_step.py

# A grid of chapter runs (submitit: local processes or Slurm) and its mean ± std over seeds into results/full/.
# make sweep GRID=grid.toml SWEEP="--executor slurm --partition gpu --gpus 1 --time 120"; later: make merge (same args)
GRID  ?=
SWEEP ?=
sweep: install data
	$(BIN)/python -m lvmcls.sweep run $(GRID) $(SWEEP)
merge: install
	$(BIN)/python -m lvmcls.sweep merge $(GRID) $(SWEEP)

# The long profile (lvmcls.long): each chapter's registry design, one seed per run, every finished seed's record
# committed at once; then the merged verdicts. Run it when nothing else heavy runs (2 threads per chapter run).
CHAPTERS ?=
long: install data
	$(BIN)/python -m lvmcls.long run --commit $(if $(CHAPTERS),--chapters $(CHAPTERS),)
# The seeds each claim needs, from the ci pilot's paired SD (results/<stem>.json, written by make execute)
long-power: install
	$(BIN)/python -m lvmcls.long power $(if $(CHAPTERS),--chapters $(CHAPTERS),)

# What a GPU machine without network needs to run chapters' full profiles (bench/full_profiles.sh): the data
# (lvmcls.data pack), the one wheel its image lacks (chapter 3's corruptions) and the commit the results record.
gpu-pack: install data
	rm -rf .pack
	$(BIN)/python -m lvmcls.data pack .pack
	$(BIN)/python -m pip download -q --no-deps --only-binary=:all: -d .pack/wheels imagecorruptions-imaug==1.1.5
	$(BIN)/python -c "from lvmcls.results import git_commit; print(git_commit())" > .pack/COMMIT
	@echo "commit: $$(cat .pack/COMMIT); size: $$(du -sh .pack | cut -f1)"

# On the GPU machine (no network, no venv: its python3 has torch), with .pack/ carried: the chapters whose full
# result is missing or stale first, each only if its FULL_MINUTES_H100 fits the time left (lvmcls.gpu_window).
BUDGET_S ?= 600
full-gpu:
	BUDGET_S=$(BUDGET_S) bash bench/full_profiles.sh

clean:
	rm -rf _build
