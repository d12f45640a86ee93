# Two commands do everything on a fresh machine: `make test` and `make demo`.
# Each sets itself up: a virtualenv with the project's dependencies and the control-plane
# binaries built from the Go module proxy (cached by version under ~/.cache/sekoia-intel-sync).

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# -P: never put the working directory on sys.path. Here it holds a folder named `operator`, which
# would shadow the standard library's module for any interpreter that has not imported it yet
# (a bare virtualenv running `-m pip` does exactly that).
PY      = $(BIN)/python -P
STAMP   = $(VENV)/.installed
PYTEST_ARGS ?=

# The second interpreter `make test` runs the non-cluster suite on (the image's Python). Found as
# PYTHON313 if set, else the newest pyenv 3.13.x, else python3.13 on PATH; make test fails if none.
PYTHON313 ?= $(shell for c in $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13*/bin/python3.13 2>/dev/null | sort -V -r) \
	$$(command -v python3.13); do "$$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null && { echo "$$c"; break; }; done)
VENV313 ?= .venv-3.13
STAMP313 = $(VENV313)/.installed

.PHONY: help setup venv venv-py313 binaries node-setup lint format test test-fast test-py313 test-node demo bench bench-runtime bench-realistic bench-operator soak fuzz clean chart-crds chart bench-budget

help:
	@echo "make test   - set up, lint, and run the whole test suite against a local control plane"
	@echo "make demo   - set up and run the end-to-end demo"
	@echo "make lint   - ruff + mypy"
	@echo "make soak   - 10-20 min: 50,000+ events through scheduled faults on the local control plane"
	@echo "make bench  - runtime and operator benchmarks: JSON, PNG charts and docs/benchmarks/README.md"
	@echo "make bench-budget - 5 syncs sharing one Sekoia budget: requests/s per sync, 429s, live delay"
	@echo "make fuzz   - the property suite (tests/property) with many more examples than in make test"
	@echo "make test-node - only the real-node tests (tests/node, the real-node demo): the image built and run by a real kubelet"
	@echo "             (make test runs them too; SIS_REAL_NODE=0 leaves them out and says what it left out)"

setup: venv binaries

venv: $(STAMP)

# The product (sekoia-intel-sync) and, beside it, the development test bed (testbed/pyproject.toml:
# control plane, emulators and their console scripts, demo, soak), both editable.
$(STAMP): pyproject.toml testbed/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	test -x $(BIN)/python || $(PYTHON) -P -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]' -e ./testbed
	touch $(STAMP)

# The development virtualenv on Python 3.13: the product, its dev extra (tests/benchmarks draws
# charts) and the test bed.
venv-py313: $(STAMP313)

$(STAMP313): pyproject.toml testbed/pyproject.toml
	@test -n "$(PYTHON313)" || { echo "Python 3.13 not found: install it (pyenv install 3.13) or set PYTHON313=/path/to/python3.13" >&2; exit 1; }
	test -x $(VENV313)/bin/python || $(PYTHON313) -P -m venv $(VENV313)
	$(VENV313)/bin/python -P -m pip install --quiet --upgrade pip
	$(VENV313)/bin/python -P -m pip install --quiet -e '.[dev]' -e ./testbed
	touch $(STAMP313)

binaries:
	@bash testbed/controlplane/build-binaries.sh >/dev/null
	@bash testbed/gotools/build.sh kstatus >/dev/null
	@bash testbed/gotools/build.sh argocdhealth >/dev/null
	@bash testbed/gotools/build.sh actionlint >/dev/null
	@bash testbed/gotools/build.sh kube-score >/dev/null

# The real node (tests/node): Debian packages installed with apt-get (listed and printed by
# install-packages.sh; root needed), kubelet and kube-proxy built from the Go module proxy, the
# project's image built from the Dockerfile with buildah on a Python 3.13 base made by mmdebstrap.
# SIS_REAL_NODE=0 leaves all of it out; this target and the tests' conftest both say so.
SIS_REAL_NODE ?= 1
export SIS_REAL_NODE

node-setup:
ifeq ($(SIS_REAL_NODE),0)
	@echo "SIS_REAL_NODE=0: left out: apt-get install of containerd runc containernetworking-plugins buildah mmdebstrap iptables;"
	@echo "  the kubelet/kube-proxy build; the image build (testbed/node/build-image.sh); the real-node tests in tests/node/."
else
	@bash testbed/node/install-packages.sh
	@bash testbed/node/build-node-binaries.sh >/dev/null
	@bash testbed/node/build-image.sh >/dev/null
endif

# mypy cannot follow setuptools' editable finder for the operator/ -> sekoia_intel_operator
# mapping, so it reads the package through a symlink made for it in .cache/.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	mkdir -p .cache/mypy-path && ln -sfn ../../operator .cache/mypy-path/sekoia_intel_operator
	MYPYPATH=.cache/mypy-path $(BIN)/mypy

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Python 3.11 (the oldest supported) runs everything; 3.13 (the image's) the non-cluster suite.
test: venv binaries node-setup lint test-py313
	$(PY) -m pytest $(PYTEST_ARGS)

test-node: venv binaries node-setup
	$(PY) -m pytest tests/demo tests/node -m real_node $(PYTEST_ARGS)

test-py313: venv-py313
	$(VENV313)/bin/python -P -m pytest -m "not cluster" $(PYTEST_ARGS)

test-fast: venv
	$(PY) -m pytest -m "not cluster" $(PYTEST_ARGS)

# `make demo KEEP=1` leaves everything running until Ctrl-C (KEEP=0/no/false or empty: run and stop).
# The runtime Pod runs on the real node (node-setup as for `make test`); where the machine cannot
# run it (or SIS_REAL_NODE=0), the demo runs its local stand-in for a kubelet and prints why.
demo: venv binaries
	@$(MAKE) --no-print-directory node-setup || echo "make demo: the real node could not be set up (see above); the demo will say why it uses its local stand-in for a kubelet"
	$(PY) -m testbed.demo $(if $(filter-out 0 no false,$(KEEP)),--keep)

# Not part of `make test`: one long scenario with faults on a schedule; exit 0 only when nothing is lost.
# The runtime Pods run on the real node (node-setup as for `make test`), else with the stand-in, saying why.
soak: venv binaries
	@$(MAKE) --no-print-directory node-setup || echo "make soak: the real node could not be set up (see above); the soak will say why it uses its local stand-in for a kubelet"
	$(PY) -m testbed.soak $(SOAK_ARGS)

# Both benchmarks, then charts and the Markdown page in docs/benchmarks/.
bench: venv binaries
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

fuzz: venv
	HYPOTHESIS_PROFILE=deep $(PY) -m pytest tests/property $(PYTEST_ARGS)

bench-runtime: venv
	$(PY) benchmarks/runtime_bench.py $(BENCH_ARGS)

# The realistic mix (testbed/feedmix.py): bulk replay, live 2 and 8 events/s, a 20,000-event burst.
bench-realistic: venv
	$(PY) benchmarks/realistic_bench.py $(BENCH_ARGS)

bench-operator: venv binaries
	$(PY) benchmarks/operator_bench.py $(BENCH_ARGS)

# Five syncs sharing one Sekoia budget (5 requests/s for all): requests/s per sync, 429s, live delay.
bench-budget: venv binaries
	$(PY) benchmarks/budget_bench.py $(BENCH_ARGS)

# The chart carries a copy of the CRD (helm warns on every command about a symlink): this refreshes
# it, and tests/packaging fails while the two differ.
chart-crds:
	cp deploy/crds/sekoiaintelsyncs.yaml deploy/helm/sekoia-intel-sync/files/crds/sekoiaintelsyncs.yaml

# The release artefact of the chart: `helm lint --strict`, then `helm package` into $(DIST)/ as
# sekoia-intel-sync-<Chart.yaml version>.tgz (the release workflow pushes that file as OCI).
CHART_DIR = deploy/helm/sekoia-intel-sync
DIST ?= dist
# HELM=/path/to/helm uses that helm instead of the pinned one built from the module proxy (CI).
HELM ?=
chart:
	@HELM="$(HELM)"; [ -n "$$HELM" ] || HELM="$$(bash testbed/controlplane/build-binaries.sh 2>/dev/null)/helm"; \
	  "$$HELM" lint --strict $(CHART_DIR) && \
	  mkdir -p $(DIST) && "$$HELM" package $(CHART_DIR) --destination $(DIST)

clean:
	rm -rf $(VENV) $(VENV313) .cache .pytest_cache .mypy_cache .ruff_cache $(DIST)
