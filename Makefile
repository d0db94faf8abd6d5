# Entry points of the project. `make help` lists them.
SHELL := /bin/bash
# Every target runs Python from .venv, made from the machine's Python: the package and its test
# tools go there, never into the system's interpreter (where pip meets unrelated packages).
SYSTEM_PYTHON ?= python3
VENV := .venv
PYTHON := $(VENV)/bin/python
DEV := devcluster
TAGS := v1 v2 crash unready wrong slow retrained slower
IMAGE_REPO := rolloutgate/iris
# The second example (examples/wine): FastAPI, plain POST /predict.
WINE_TAGS := v1 v2 crash unready wrong
WINE_REPO := rolloutgate/wine

.PHONY: help deps k8s helm docker-up cluster-up cluster-down cluster-status cluster-clean load-image \
        images load-images python-deps gate test lint bench kind-image

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

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

images: docker-up  ## build every tag of the example model images (iris, wine)
	$(MAKE) -C examples/iris images
	$(MAKE) -C examples/wine images

load-images: images  ## load every example tag into the cluster
	$(DEV)/load-image.sh $(addprefix $(IMAGE_REPO):,$(TAGS)) $(addprefix $(WINE_REPO):,$(WINE_TAGS))

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

test: cluster-up load-images python-deps helm kind-image  ## the project's own tests (unit, plugin, cluster, images, end-to-end, kind)
	$(PYTHON) -m pytest tests/unit tests/plugin tests/devcluster tests/examples tests/cluster_layer tests/e2e tests/kind

lint: python-deps  ## ruff, mypy and the layering contract (docs/architecture.md)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check src tests conftest.py
	$(PYTHON) -m mypy
	$(VENV)/bin/lint-imports

bench: cluster-up load-images python-deps  ## the benchmark: prints a table, writes reports/bench.json
	$(PYTHON) -m bench
