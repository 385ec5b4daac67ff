# Senex Trader delivery system. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= $(shell scripts/find-python)
# Debian packages the tests and the sandbox need on the controller (a Debian 12 or newer machine).
# Labs (test hosts on a private network) add iproute2 and socat; the test registries docker-registry and htpasswd.
APT_PACKAGES := systemd-container mmdebstrap openssh-client openssl postgresql prometheus redis-server shellcheck uidmap \
	iproute2 socat docker-registry apache2-utils python3-yaml
TESTHOST := $(BIN)/python molecule/testhost/testhost.py
COMPOSE ?= podman-compose
COMPOSE_DEV := $(COMPOSE) -f docker-compose.yml -f docker-compose.dev.yml
COMPOSE_PROD := $(COMPOSE) -f docker-compose.yml -f docker-compose.prod.yml

.PHONY: help deps venv lock lint test test-python molecule molecule-listed sandbox sandbox-destroy bench bench-stack clean \
	compose-up compose-down compose-logs compose-prod-up compose-prod-down compose-prod-logs

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 20

deps: ## Install the Debian packages that are missing (needs root).
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s "$$p" >/dev/null 2>&1 || echo "$$p"; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.installed ## Create the virtual environment with the controller and test tooling.

# From the lock alone, every file checked against its hash; pyproject.toml and
# app/requirements/*.txt reach the venv through `make lock`.
$(VENV)/.installed: requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r requirements-dev.lock
	touch $@

lock: venv ## Compile the hash-locked requirements from pyproject.toml and app/requirements/*.txt.
	scripts/lock

lint: venv ## Run ruff, shellcheck, yamllint and ansible-lint.
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	git ls-files -z '*.sh' scripts .ci/run | xargs -0 shellcheck
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint

test-python: venv ## Run pytest: the app against real PostgreSQL/Redis, the image in a test host, repo checks.
	$(BIN)/pytest

# Every Molecule scenario, the longest first (by the last full run): `make molecule` and `make test`
# start them in this order as running ones end, TEST_JOBS at once: three keep two cores busy, and
# the order keeps one long scenario from running alone at the end.
MOLECULE_SCENARIOS ?= operations cluster default contract offsite quadlet
TEST_JOBS ?= 3
# What `make test` runs: the linters first (while the first scenarios wait for the shared test-host
# images to be built), then the scenarios in the same order with pytest fourth: it is shorter
# than the three before it and longer than the rest (README.md, "Tests").
TEST_QUEUE := lint $(wordlist 1,3,$(MOLECULE_SCENARIOS:%=molecule-%)) test-python \
	$(wordlist 4,$(words $(MOLECULE_SCENARIOS)),$(MOLECULE_SCENARIOS:%=molecule-%))
MOLECULE_PRESENT := $(sort $(patsubst molecule/%/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))
# Runs the jobs it is given TEST_JOBS at once, every one to its end (-k), after the list check.
RUN_QUEUE := $(MAKE) --no-print-directory -k -j$(TEST_JOBS) --output-sync=target molecule-listed

molecule: venv ## Run every Molecule scenario against fresh test hosts, TEST_JOBS at once.
	$(RUN_QUEUE) $(MOLECULE_SCENARIOS:%=molecule-%)

# One scenario: `make molecule-default`; its log is .molecule-logs/default.log.
molecule-%: venv
	PATH="$(abspath $(BIN)):$$PATH" scripts/molecule-scenario $*

# A scenario missing from MOLECULE_SCENARIOS would never run in CI.
molecule-listed:
	@if [ "$(sort $(MOLECULE_SCENARIOS))" != "$(MOLECULE_PRESENT)" ]; then \
	  echo "MOLECULE_SCENARIOS must name every scenario under molecule/ once:"; \
	  echo "  it names: $(sort $(MOLECULE_SCENARIOS))"; echo "  molecule/ has: $(MOLECULE_PRESENT)"; exit 1; \
	fi

test: deps venv ## Run every test and the linters (needs root: test hosts boot with systemd-nspawn).
	@# Each job's output is printed whole when it ends.
	$(RUN_QUEUE) $(TEST_QUEUE)

sandbox: deps venv ## Deploy the whole stack to a local disposable test host and print its URL.
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/ansible-playbook -i inventories/sandbox/hosts.yml \
	  --vault-password-file inventories/sandbox/SANDBOX-ONLY-vault-password ansible/sandbox.yml

sandbox-destroy: venv ## Power off and remove the sandbox test host.
	$(TESTHOST) destroy sandbox

bench: deps venv ## Print the benchmarks' figures (image, test hosts, the web servers' CPU per request).
	$(BIN)/python bench/testhost.py
	$(BIN)/python bench/image.py
	$(BIN)/python bench/servers.py

bench-stack: deps venv ## Deploy a fresh test host (bench1) and print the stack's figures against bare (bench/results/).
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/stack.py

bench-edge: deps venv ## Deploy the cluster scenario's three lab hosts, print req/s through the edge with two web hosts and one (bench/results/).
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/molecule converge -s cluster
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/molecule side-effect -s cluster
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/molecule destroy -s cluster

compose-up: ## Start the development stack with Compose (code mounted, runserver with reload).
	$(COMPOSE_DEV) up -d

compose-down: ## Stop the development stack; the named volumes stay.
	$(COMPOSE_DEV) down

compose-logs: ## Follow the development stack's logs.
	$(COMPOSE_DEV) logs -f

compose-prod-up: ## Start the production-like stack (production image, limits, restart policies).
	$(COMPOSE_PROD) up -d

compose-prod-down: ## Stop the production-like stack; the named volumes stay.
	$(COMPOSE_PROD) down

compose-prod-logs: ## Follow the production-like stack's logs.
	$(COMPOSE_PROD) logs -f

clean: ## Remove the virtual environment and caches.
	rm -rf $(VENV) .pytest_cache .ruff_cache
