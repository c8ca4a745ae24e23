"""A merchant's own signature of its payout account, as registerMerchant requires it: the tests'
name for the deployment helper they share with the contract-level day."""

from scripts.city_suite import signed_application

__all__ = ["signed_application"]
