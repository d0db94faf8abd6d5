# Entry points of the project. `make help` lists them.
SHELL := /bin/bash
# Every target runs Python from .venv, made from the machine's Python: the package and its test
# tools go there, never into the system's interpreter (where pip meets unrelated packages).
SYSTEM_PYTHON ?= python3
VENV := .venv
PYTHON := $(VENV)/bin/python
DEV := devcluster
TAGS := v1 v2 crash unready wrong slow retrained slower heavier hang
IMAGE_REPO := rolloutgate/iris
# The second example (examples/wine): FastAPI, plain POST /predict.
WINE_TAGS := v1 v2 crash unready wrong hang
WINE_REPO := rolloutgate/wine
# The third example (examples/penguin): the standard library only, its own paths, ready in about
# a second; the project's end-to-end tests of the gate's mechanics run on it.
PENGUIN_TAGS := v1 v2 crash unready wrong slow hang
PENGUIN_REPO := rolloutgate/penguin

.PHONY: help deps k8s helm docker-up cluster-up cluster-down cluster-status cluster-clean load-image \
        images load-images python-deps gate test test-fast lint actionlint bench kind-image

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

deps:  ## install the Debian packages the cluster and image builds need
	$(DEV)/deps.sh

k8s: deps  ## build Kubernetes and etcd from the Go module proxy (cached by version)
	$(DEV)/build-k8s.sh

helm: deps  ## build helm from the Go module proxy (cached by version): chart sources, benchmark
	$(DEV)/build-helm.sh

docker-up: deps  ## start dockerd for image builds
	$(DEV)/docker-up.sh

cluster-up: k8s  ## start the local single-node cluster; kubeconfig in .cluster/kubeconfig
	$(DEV)/cluster-up.sh

cluster-down:  ## stop every process of the local cluster and remove its network state
	$(DEV)/cluster-down.sh

cluster-status:  ## say what runs
	$(DEV)/cluster-status.sh

cluster-clean: cluster-down  ## also remove etcd data, certificates and imported images
	rm -rf "$${ROLLOUTGATE_STATE_DIR:-/var/lib/rolloutgate}"/{etcd,pki,conf,containerd,kubelet,images,cni}
	rm -rf .cluster

load-image:  ## move a Docker image into the cluster: make load-image IMAGE=repo:tag
	@test -n "$(IMAGE)" || { echo "usage: make load-image IMAGE=repo:tag" >&2; exit 2; }
	$(DEV)/load-image.sh $(IMAGE)

kind-image: k8s docker-up  ## kind + an offline kind node image for --cluster=kind (cached; docs/kind.md)
	$(DEV)/kind/build-tools.sh
	$(DEV)/kind/node-image.sh

images: docker-up  ## build every tag of the example model images (iris, wine, penguin)
	$(MAKE) -C examples/iris images
	$(MAKE) -C examples/wine images
	$(MAKE) -C examples/penguin images

load-images: images  ## load every example tag into the cluster
	$(DEV)/load-image.sh $(addprefix $(IMAGE_REPO):,$(TAGS)) $(addprefix $(WINE_REPO):,$(WINE_TAGS)) \
	    $(addprefix $(PENGUIN_REPO):,$(PENGUIN_TAGS))

$(PYTHON):
	$(SYSTEM_PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	    echo "$(SYSTEM_PYTHON) -m venv failed: Debian's python3-venv provides it (make deps)" >&2; exit 1; }

# Installed again only when pyproject.toml changes (the package itself is an editable install).
$(VENV)/.installed: pyproject.toml | $(PYTHON)
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

python-deps: $(VENV)/.installed  ## install the package and test tools into .venv

gate: cluster-up load-images python-deps  ## run the gate on the example model: v1, then v2
	$(PYTHON) -m pytest --cluster=local --image-tag=v1
	$(PYTHON) -m pytest --cluster=local --image-tag=v2

# The project's own tests. Each module keeps its objects in namespaces of its own, so modules
# run side by side (pytest-xdist, one module per worker, in xdist's order: the longest first
# measured no different); the end-to-end modules mostly wait on the cluster, hence more workers
# than the two cores. What restarts or stops cluster components is marked `disruptive`, what
# measures the canary arms' latency at their defaults `alone`: both run alone afterwards. Both
# runs always run; either failing fails the target.
TEST_PATHS := tests/kind tests/e2e tests/cluster_layer tests/examples tests/devcluster tests/plugin tests/unit
TEST_WORKERS ?= 4
# Python keeps its compiled modules: every gate a test starts is a new interpreter, and with
# PYTHONDONTWRITEBYTECODE set (as some CI environments set it) each one compiled the package
# and the suite again (~0.3 CPU-s a start, measured). An empty value is "not set" for Python.
test test-fast: export PYTHONDONTWRITEBYTECODE :=
PYTEST_ARGS ?=

test: cluster-up load-images python-deps helm kind-image  ## the project's own tests (unit, plugin, cluster, images, end-to-end, kind); prints the 25 slowest
	@rc=0; \
	$(PYTHON) -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=25 -m "not disruptive and not alone" \
	    $(PYTEST_ARGS) $(TEST_PATHS) || rc=$$?; \
	$(PYTHON) -m pytest --durations=25 -m "disruptive or alone" $(PYTEST_ARGS) tests/devcluster tests/e2e || rc=$$?; \
	exit $$rc

test-fast: python-deps  ## the inner loop: unit and plugin tests, no cluster (under a minute)
	$(PYTHON) -m pytest -n 2 --durations=10 $(PYTEST_ARGS) tests/unit tests/plugin

lint: python-deps actionlint  ## ruff, mypy, the layering contract (docs/architecture.md), actionlint
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check src tests conftest.py
	$(PYTHON) -m mypy
	$(VENV)/bin/lint-imports

# actionlint checks the shipped workflows (expressions, shell scripts, action inputs); built
# from the Go module proxy once per version, outside the repository.
ACTIONLINT_VERSION := v1.7.12
ROLLOUTGATE_CACHE ?= $(HOME)/.cache/rolloutgate
ACTIONLINT := $(ROLLOUTGATE_CACHE)/actionlint/$(ACTIONLINT_VERSION)/actionlint

$(ACTIONLINT):
	GOBIN=$(dir $@) go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

actionlint: $(ACTIONLINT)  ## lint .github/workflows with actionlint
	$(ACTIONLINT) .github/workflows/*.yml

bench: cluster-up load-images python-deps  ## the benchmark: prints a table, writes reports/bench.json
	$(PYTHON) -m bench
