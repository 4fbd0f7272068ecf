# Two entry points: `make demo` (set up, run the main job) and `make test` (set up, run the tests).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= build

.PHONY: demo test test-slow bench setup clean

setup: $(STAMP)

# torch==2.13.0 first: on these machines it resolves to a local CPU build, and the range in
# pyproject.toml is then satisfied without pulling CUDA wheels.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test,bench]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/eqfree simulate --system fast_slow_linear --walkers 2000 --steps 2000 --dt 0.1 \
		--save-every 10 --seed 2026 --out $(OUT)/fast_slow_linear.zarr --overwrite
	$(BIN)/eqfree stats $(OUT)/fast_slow_linear.zarr --coord x2 --discard 50

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python benchmarks/sde_throughput.py
	$(BIN)/python benchmarks/diffusion_maps.py $(if $(PEERS),--peers-python $(PEERS))

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .hypothesis
