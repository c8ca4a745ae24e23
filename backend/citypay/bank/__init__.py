"""Bank payouts: the adapter interface the cash-out flow pays through, and the sandbox bank."""
