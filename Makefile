# Two entry points: `make demo` (set up, run the main job) and `make test` (set up, run the tests).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= build

.PHONY: demo test test-slow bench setup clean docs docs-check

setup: $(STAMP)

# torch==2.13.0 first: on these machines it resolves to a local CPU build, and the range in
# pyproject.toml is then satisfied without pulling CUDA wheels.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test,bench]"
	touch $(STAMP)

# The closure of averaging_cubic across a CV grid (resumable: a rerun computes only missing points),
# its closed ODE against direct fine simulation: a table on stdout and $(OUT)/closure.png.
demo: $(STAMP)
	$(BIN)/eqfree run tutorials/closure_demo.toml --out=$(OUT)/closure.zarr
	$(BIN)/eqfree closure integrate --closure $(OUT)/closure.zarr --z0 1 --t-end 1 --compare 1000 --seed 2 \
		--png $(OUT)/closure.png --out $(OUT)/closure_path.zarr --overwrite

# The linter first (configured in pyproject.toml), then the tests on up to 4 worker processes
# (pytest-xdist); each test pins torch to one thread. Work stealing keeps both workers busy to the end
# (idle 9 s of 315 against 15-25 s of 320-337 with the default scheduling, 2 cores).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n auto --maxprocesses=4 --dist worksteal

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	rm -f build/bench.json
	$(BIN)/python benchmarks/sde_throughput.py
	$(BIN)/python benchmarks/diffusion_maps.py $(if $(PEERS),--peers-python $(PEERS))
	$(BIN)/python benchmarks/umbrella.py
	$(BIN)/python benchmarks/reweight_bootstrap.py
	$(BIN)/python benchmarks/closure_scaling.py
	$(BIN)/python benchmarks/kinetics.py
	$(BIN)/python benchmarks/lifting.py
	$(BIN)/python benchmarks/assisted_umbrella.py
	$(BIN)/python benchmarks/md.py
	$(BIN)/python benchmarks/table.py --readme

# The documentation site (build/docs/html), offline, warnings as errors; the tutorials run in their fast
# mode (EQFREE_DOCS_FULL=1 runs them in full). docs-check opens it in headless Chromium (Debian's package,
# installed here when missing; the check is skipped with a message where it cannot be installed).
DOCS_STAMP := $(VENV)/.docs-installed

$(DOCS_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e ".[test,bench,docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(BIN)/interrogate eqfree systems closures
	$(BIN)/sphinx-build -W --keep-going -q -b html docs build/docs/html

docs-check: docs
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium) \
		|| echo "chromium could not be installed: the browser check will be skipped"
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 0 docs/test_site.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .hypothesis
