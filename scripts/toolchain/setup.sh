#!/usr/bin/env bash
# Prepares everything the project runs on, inside the project folder: the Python virtual
# environments (.venv for the chain tools, .venv-backend for the services), the npm tools (node_modules), the solc-js shim where py-solc-x looks for a
# compiler, and anvil on PATH for Brownie. Safe to run again: each step is skipped when the
# files it depends on have not changed since it last succeeded.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
stamps="$root/.toolchain/stamps"
mkdir -p "$stamps" "$root/.toolchain/solc" "$root/.toolchain/bin"

# Runs "$@" unless the recorded hash of the given files is unchanged.
step() {
  local name="$1" files="$2"
  shift 2
  local hash
  hash="$(cat $files | sha256sum | cut -d' ' -f1)"
  if [[ -f "$stamps/$name" && "$(cat "$stamps/$name")" == "$hash" ]]; then
    return 0
  fi
  echo "setup: $name" >&2
  "$@"
  echo "$hash" > "$stamps/$name"
}

python_interpreter() {
  local python="${PYTHON:-python3.11}"
  command -v "$python" >/dev/null || python=python3
  "$python" -c 'import sys; assert sys.version_info >= (3, 11), f"Python 3.11 or newer is needed, found {sys.version}"'
  echo "$python"
}

# python_env VENV EXTRAS CONSTRAINTS
python_env() {
  local venv="$1" extras="$2" constraints="$3"
  [[ -x "$venv/bin/python" ]] || "$(python_interpreter)" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip==24.3.1"
  BROWNIE_NOCOMPILE=1 "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-binary eth-brownie -c "$constraints" -e ".[$extras]"
}

npm_tools() {
  npm ci --no-audit --no-fund --loglevel=error
}

toolchain_links() {
  local solc_version
  solc_version="$(node -p 'require("./node_modules/solc/package.json").version')"
  install -m 0755 scripts/toolchain/solc_shim.js ".toolchain/solc/solc-v$solc_version"
  # npm installs only the platform package that matches this machine (anvil-linux-amd64, ...).
  local anvil
  anvil="$(ls "$root"/node_modules/@foundry-rs/anvil-*/bin/anvil | head -n1)"
  ln -sf "$anvil" .toolchain/bin/anvil
  .toolchain/bin/anvil --version >/dev/null
}

step chain-env "pyproject.toml constraints/chain.txt" python_env .venv chain,dev constraints/chain.txt
step backend-env "pyproject.toml constraints/backend.txt" python_env .venv-backend backend,dev constraints/backend.txt
step npm-tools "package.json package-lock.json" npm_tools
step toolchain-links "scripts/toolchain/solc_shim.js package-lock.json" toolchain_links
