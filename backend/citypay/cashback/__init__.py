"""Cashback on payments (결제 캐시백): the active replica settles each payment it finds in the
listener's index with the city's CityCashback, which alone decides how much; and what a wallet or
a till reads of it: the city's terms, an account's month, what a payment earned."""
