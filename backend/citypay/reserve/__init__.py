"""Proof of reserve: the bank's signed statements of each city's custody account, recorded on
chain beside the tokens outstanding, and checked by the auditor."""
