"""Merchant cash-out (환전): a relayed redemption on chain, a bank payout, then settlement or
return on chain, exactly once across crashes.

Kept import-free: the Brownie tests import `citypay.cashout.authorization` from a virtual
environment without the backend's dependencies."""
