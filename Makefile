# newsevents workflow. Each target names one step; `make train` and `make test` set up
# everything they need on a fresh machine (a virtual environment in .venv/).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PORT   ?= 5000
CHAMPION := models/champion/model.joblib

.PHONY: help install accurate data train student curve test lint ui bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	@touch $@

install: $(STAMP)  ## create .venv and install the package with its dev tools and Spark

accurate: $(STAMP)  ## install the accurate tier: ONNX Runtime extra + the mpnet-base encoder
	$(BIN)/python -m pip install --quiet -e '.[accurate,dev]'
	$(BIN)/newsevents encoder install mpnet-base

data: $(STAMP)  ## validate annotations and build data/processed/ (DatasetDict + Parquet)
	$(BIN)/newsevents data

train: $(STAMP)  ## train every default experiment, log to MLflow, export the champion
	$(BIN)/newsevents train

student: $(STAMP)  ## the fast tier taught by the accurate one (needs ../shared/corpus): models/student
	$(BIN)/newsevents train experiments/15-student-soft-logreg.yaml

curve: $(STAMP)  ## learning curve of the champion family on the test split (logged to MLflow)
	$(BIN)/newsevents curve

$(CHAMPION): $(STAMP)
	$(BIN)/newsevents train

test: $(STAMP) $(CHAMPION)  ## lint, then run the whole test suite (trains a model first if none)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check .

ui: $(STAMP)  ## MLflow UI on http://127.0.0.1:$(PORT) over the project's store (prints the runs-table address)
	$(BIN)/newsevents ui --port $(PORT)

bench: $(STAMP) $(CHAMPION)  ## speed and memory benchmarks (figures printed, not asserted)
	$(BIN)/python benchmarks/train_time.py
	$(BIN)/python benchmarks/predict_speed.py
	$(BIN)/python benchmarks/spark_speed.py
	$(BIN)/python benchmarks/tiers.py

clean:  ## remove generated data, models and the MLflow store (keeps .venv)
	rm -rf data/processed models/champion models/student models/accurate mlflow.db mlartifacts mlruns
