"""The chain event listener: every event of every city's contracts, indexed once, in order."""
