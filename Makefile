# Every target that runs something first makes sure .venv exists and holds the project.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install demo analysis-demo test lint format bench cohort screenshots architecture-picture clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/rig validate protocols/demo.yaml --rig docs/rigs/sim-small.yaml
	$(BIN)/rig run protocols/demo.yaml --fast --rig docs/rigs/sim-small.yaml --animal demo-mouse \
		--out demo-sessions > .demo-path
	$(BIN)/rig info "$$(tail -n 1 .demo-path)"
	$(BIN)/rig score "$$(tail -n 1 .demo-path)" --plot

# One simulated animal through habituation, conditioning, recall and extinction (the
# protocols/ library on the simulated rig, 100 neurons), then `rig analyze` on the truth
# footprints; figures and tables in analysis-demo/analysis.
analysis-demo: $(STAMP)
	$(BIN)/python -m sim.analysis_demo --out analysis-demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

# docs/architecture.png, drawn from the code's imports
architecture-picture: $(STAMP)
	$(BIN)/python docs/architecture_picture.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/bench_fast_session.py
	$(BIN)/python bench/bench_store.py --frames 600
	$(BIN)/python bench/bench_longrun.py --duration 600
	$(BIN)/python bench/bench_longrun.py --small --fast --duration 7200

# Four simulated animals through the four days (shortened protocols, 60 neurons), once; then
# `rig cohort` on them: tables, statistics and figures in cohort-sessions/cohort. Run again, it
# finds every task done (docs/cohort.md).
cohort: $(STAMP)
	test -d cohort-sessions || $(BIN)/python -m sim.cohort --animals 4 --preset test --jobs 2 \
		--out cohort-sessions
	$(BIN)/rig cohort cohort-sessions --traces footprints --shuffles 20

screenshots: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m gui.screenshots

clean:
	rm -rf $(VENV) demo-sessions .demo-path cohort-sessions analysis-demo
