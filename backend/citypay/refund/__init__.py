"""Merchant refunds (환불) relayed: a merchant-signed RefundWithAuthorization is checked against the
chain, recorded, sent by the relayer account and followed to inclusion, exactly once across
restarts."""
