# The two commands of README.md: `make demo` (the main job) and `make test` (the whole suite).
# Each creates .venv and installs the pinned dependencies on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kerazoo-installed

.PHONY: demo test test-zoo-jax lint-imports lint clean

$(STAMP): setup.cfg constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test,jax]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m finetune.demo --out runs/demo
	$(BIN)/zoo convert runs/demo/transfer --to onnx
	$(BIN)/zoo convert runs/demo/transfer --to onnx --precision int8
	$(BIN)/zoo bench runs/demo/transfer/model.keras runs/demo/transfer/model.onnx \
		runs/demo/transfer/model.int8.onnx --batch-sizes 1,64

# --durations: every CI log lists the slowest tests, so the next cut starts from numbers.
test: $(STAMP)
	$(MAKE) lint-imports
	$(BIN)/python -m pytest -q --durations=30 --nbmake tests notebooks
	$(MAKE) test-zoo-jax

# The layering in setup.cfg's [importlinter]: finetune | convert over zoo, no cycles in convert.
lint-imports: $(STAMP)
	$(BIN)/lint-imports

# The model tests again under JAX: they prove the builders are backend-independent, so each model
# family builds, runs, trains a step and saves/loads there, but the 12 backbone entries run as one
# head per body (tests/zoo/helpers.py: models_for_backend) and facts no backend changes (parameter
# counts at 224x224, a fresh interpreter's registrations) stay with the TensorFlow pass. zoo.data,
# zoo.runs and the CLI start-up tests import no Keras, so a second backend would only run them
# twice. The tests run ops eagerly on tiny inputs, so XLA compiling each op is most of their time;
# LLVM at -O0 compiles about 30% faster (CPU time of a sample: 73 s -> 52 s) and every tolerance
# of the suite still holds.
test-zoo-jax: $(STAMP)
	KERAS_BACKEND=jax XLA_FLAGS=--xla_backend_optimization_level=0 \
		$(BIN)/python -m pytest -q --durations=15 tests/zoo \
		--ignore=tests/zoo/test_data.py --ignore=tests/zoo/test_data_sources.py \
		--ignore=tests/zoo/test_data_series.py --ignore=tests/zoo/test_runs.py \
		--ignore=tests/zoo/test_cli_startup.py

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) runs build *.egg-info
