"""Gifts (선물하기) relayed: a resident-signed GiftAuthorization of general money bought with KRW
is checked against the city's gifts contract, recorded, sent by the city's relayer and followed to
inclusion, exactly once across restarts."""
