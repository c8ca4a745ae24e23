# The two commands of the README: `make day` runs the platform's main job on the embedded chain,
# `make test` runs every test. Both prepare the environment first (scripts/toolchain/setup.sh).
SHELL := /bin/bash
comma := ,
export SOLCX_BINARY_PATH := $(CURDIR)/.toolchain/solc
export PATH := $(CURDIR)/.toolchain/bin:$(CURDIR)/.venv/bin:$(PATH)
BROWNIE := .venv/bin/brownie

.PHONY: setup compile abi day cluster contract-day test backend-test backend-test-run lint gas bench-relay bench-audit bench-listener bench-fraud audit lock chain-start chain-stop chain-status chain-reset deploy city

setup:
	@scripts/toolchain/setup.sh

compile: setup
	$(BROWNIE) compile

# After a contract's interface changes: the ABIs the backend package carries for its listener and
# auditor (tests/deployment/test_packaged_abis.py fails until they match the build).
abi: setup
	.venv/bin/python -m scripts.abi

# The main job: starts the chain, deploys the cities, starts the backend and runs a day through
# the HTTP API, then keeps serving until Ctrl-C (DAY_ARGS=--no-serve ends after the summary).
day: setup
	.venv-backend/bin/python -m citypay.day $(DAY_ARGS)

# The day on PostgreSQL with CLUSTER_REPLICAS backend replicas behind one address (its own chain
# and files under data/cluster/): docs/operations.md.
CLUSTER_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/citypay_cluster
CLUSTER_REPLICAS ?= 3
cluster: setup
	DATABASE_URL=$(CLUSTER_DATABASE_URL) CITYPAY_REPLICAS=$(CLUSTER_REPLICAS) \
	  CITYPAY_DAY_DATA=$(CURDIR)/data/cluster .venv-backend/bin/python -m citypay.day $(DAY_ARGS)

# The contracts alone on a fresh Brownie chain: the same day, contract call by contract call.
contract-day: setup
	$(BROWNIE) run scripts/day.py

# Contract and deployment tests run under Brownie (.venv); the backend's under its own
# environment, on SQLite and, when TEST_POSTGRES_URL names a server (CI sets it), on PostgreSQL.
# The three runs share nothing but the compiled contracts (each starts its own chain, and the
# backend runs their own bank and backend on free ports), so they run at the same time: the
# backend runs mostly wait for blocks, Brownie's state machine mostly computes (one after the
# other they took 33.5 min on the 2-core CI machine). Each run's output follows in full.
# The slowest tests are listed at the end of each run, to see where the suite's time goes.
PYTEST_ARGS ?= --durations=10
BACKEND_PYTEST_ARGS ?= --durations=25
TEST_LOGS := data/test-logs

test: setup lint compile
	@scripts/toolchain/browser.sh
	@mkdir -p $(TEST_LOGS)
	@echo "contract tests (Brownie), backend tests on SQLite$(if $(TEST_POSTGRES_URL), and on PostgreSQL) at the same time; logs in $(TEST_LOGS)/"
	@$(BROWNIE) test tests/ $(PYTEST_ARGS) > $(TEST_LOGS)/contracts.log 2>&1 & contracts=$$!; \
	$(if $(TEST_POSTGRES_URL),$(MAKE) --no-print-directory backend-test-run DATABASE_URL=$(TEST_POSTGRES_URL) \
	  > $(TEST_LOGS)/backend-postgres.log 2>&1 & postgres=$$!;,postgres=;) \
	$(MAKE) --no-print-directory backend-test-run > $(TEST_LOGS)/backend-sqlite.log 2>&1; sqlite=$$?; \
	wait $$contracts; brownie=$$?; pg=0; if [[ -n "$$postgres" ]]; then wait $$postgres; pg=$$?; fi; \
	for log in contracts backend-sqlite $(if $(TEST_POSTGRES_URL),backend-postgres); do \
	  echo "--- $$log ($(TEST_LOGS)/$$log.log) ---"; cat $(TEST_LOGS)/$$log.log; done; \
	echo "contract tests exit $$brownie, backend tests on SQLite exit $$sqlite$(if $(TEST_POSTGRES_URL),$(comma) on PostgreSQL exit $$pg)"; \
	exit $$(( brownie != 0 || sqlite != 0 || pg != 0 ))

# The admin dashboard's browser test drives Debian's Chromium: browser.sh installs it (as root or
# with sudo) when /usr/bin/chromium is missing.
backend-test: setup
	scripts/toolchain/browser.sh
	$(MAKE) --no-print-directory backend-test-run

backend-test-run:
	.venv-backend/bin/pytest backend/tests $(BACKEND_PYTEST_ARGS)

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

gas: setup
	$(BROWNIE) run $(CURDIR)/bench/gas.py

# Relayed payments per second end to end against raw ERC-20 transfers (BENCH_PAYMENTS, BENCH_CLIENTS).
bench-relay: setup
	.venv-backend/bin/python bench/relay.py

# Time to audit BENCH_AUDIT_PAYMENTS (100,000) payments on a chain of its own, against the raw
# eth_getLogs read of the same blocks.
bench-audit: setup
	.venv-backend/bin/python bench/audit.py

# Chain events indexed per second (raw eth_getLogs, decoding, the listener into SQLite and, with
# BENCH_POSTGRES_URL, PostgreSQL) over BENCH_LISTENER_PAYMENTS (20,000) payments on a chain of its
# own; and the listener's lag while the relay benchmark's load (BENCH_PAYMENTS) comes in.
bench-listener: setup
	.venv-backend/bin/python bench/listener.py

# The fraud rules' µs per event over BENCH_FRAUD_PAYMENTS (20,000) payments to a few merchants in
# minutes, folded in memory; BENCH_FRAUD_ARGS=--stored: the engine's catch-up over such a history
# stored by the listener, on a chain of its own.
bench-fraud: setup
	.venv-backend/bin/python bench/fraud.py $(BENCH_FRAUD_ARGS)

# The auditor, knowing only a node and the directory's address (by default the embedded chain's
# and its manifest's): make audit AUDIT_ARGS="check --city gimpo".
AUDIT_RPC_URL ?= http://127.0.0.1:8546
AUDIT_DIRECTORY ?= $(shell .venv-backend/bin/python -c "import json; print(json.load(open('data/deployments/58210.json'))['directory']['address'])" 2>/dev/null)
audit: setup
	.venv-backend/bin/python -m citypay.audit $(or $(AUDIT_ARGS),report) --rpc-url $(AUDIT_RPC_URL) --directory $(AUDIT_DIRECTORY)

# Re-pins constraints/ from the two environments after a change to pyproject.toml.
lock: setup
	.venv/bin/pip freeze --exclude-editable | sed '1i # Every package of .venv (chain tools), pinned. Regenerate with `make lock`.' > constraints/chain.txt
	.venv-backend/bin/pip freeze --exclude-editable | sed '1i # Every package of .venv-backend (services), pinned. Regenerate with `make lock`.' > constraints/backend.txt

# The project's own chain (anvil, chain id 58210, 1-second blocks, zero gas price, state kept in
# data/chain/): CITY_CHAIN_PORT (8546), CITY_CHAIN_ID and CITY_CHAIN_DATA override chain.env.
chain-start: setup
	.venv/bin/python -m scripts.chain start

chain-stop: setup
	.venv/bin/python -m scripts.chain stop

chain-status: setup
	.venv/bin/python -m scripts.chain status

# Stops the chain and deletes its state and its deployment manifest: the next deploy starts over.
# The day's backend and sandbox bank databases describe that chain (its blocks, nonces, the
# listener's checkpoint): they go with it.
chain-reset: setup
	.venv/bin/python -m scripts.chain reset
	rm -f data/backend/citypay.sqlite3* data/bank/sandbox.sqlite3*

# Deploys config/cities.yaml to the embedded chain; DEPLOY_ARGS for another network, e.g.
# DEPLOY_ARGS="--network permissioned --rpc-url http://node:8545 --chain-id 1337".
deploy: setup
	.venv/bin/python -m scripts.deploy $(DEPLOY_ARGS)

# Shows one city from the manifest and the chain: make city CITY=gimpo.
city: setup
	.venv/bin/python -m scripts.city $(or $(CITY),gimpo) $(CITY_ARGS)
