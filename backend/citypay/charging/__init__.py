"""Charging (충전): a bank's signed deposit notification in, issuance on chain out."""
