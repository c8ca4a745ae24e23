"""Fraud (깡) rules over the indexed chain events, and the alerts they raise."""
