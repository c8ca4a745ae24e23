# The two commands of the README: `make day` runs the platform's main job on the embedded chain,
# `make test` runs every test. Both prepare the environment first (scripts/toolchain/setup.sh).
SHELL := /bin/bash
export SOLCX_BINARY_PATH := $(CURDIR)/.toolchain/solc
export PATH := $(CURDIR)/.toolchain/bin:$(CURDIR)/.venv/bin:$(PATH)
BROWNIE := .venv/bin/brownie

.PHONY: setup compile day test lint gas lock chain-start chain-stop chain-status chain-reset deploy city

setup:
	@scripts/toolchain/setup.sh

compile: setup
	$(BROWNIE) compile

day: setup
	$(BROWNIE) run scripts/day.py

test: setup lint
	$(BROWNIE) test tests/ $(PYTEST_ARGS)

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

gas: setup
	$(BROWNIE) run bench/gas.py

# Re-pins constraints.txt from the environment after a change to pyproject.toml.
lock: setup
	.venv/bin/pip freeze --exclude-editable | sed '1i # Every Python package of the project environment, pinned. Regenerate with `make lock` after changing pyproject.toml.' > constraints.txt

# The project's own chain (anvil, chain id 58210, 1-second blocks, zero gas price, state kept in
# data/chain/): CITY_CHAIN_PORT (8546), CITY_CHAIN_ID and CITY_CHAIN_DATA override chain.env.
chain-start: setup
	.venv/bin/python -m scripts.chain start

chain-stop: setup
	.venv/bin/python -m scripts.chain stop

chain-status: setup
	.venv/bin/python -m scripts.chain status

# Stops the chain and deletes its state and its deployment manifest: the next deploy starts over.
chain-reset: setup
	.venv/bin/python -m scripts.chain reset

# Deploys config/cities.yaml to the embedded chain; DEPLOY_ARGS for another network, e.g.
# DEPLOY_ARGS="--network permissioned --rpc-url http://node:8545 --chain-id 1337".
deploy: setup
	.venv/bin/python -m scripts.deploy $(DEPLOY_ARGS)

# Shows one city from the manifest and the chain: make city CITY=gimpo.
city: setup
	.venv/bin/python -m scripts.city $(or $(CITY),gimpo) $(CITY_ARGS)
