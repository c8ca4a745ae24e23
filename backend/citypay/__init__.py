"""City token platform: chain access, signing and the backend services."""

import os
from importlib.util import find_spec

# keccak256 through safe-pysha3 (the `sha3` module) rather than pycryptodome, eth-hash's first
# choice: 0.7 us a hash against 3.6 us, and a relayed payment hashes dozens of times (its EIP-712
# digest, the recovered key's address, checksummed addresses); in the relay benchmark's profile
# pycryptodome's hash objects took 15% of the event loop's time. The services' environment has
# it; the chain tools' (.venv, which imports this package too) keep pycryptodome. An operator's
# own ETH_HASH_BACKEND still wins.
if find_spec("sha3") is not None:
    os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")
