"""The day's gifts (선물하기): dohyun gives seoyeon money he bought with KRW, within the city's
monthly caps, through his wallet app and the backend's relay; a second gift that would pass his
month's send cap is refused, with the reason the wallet shows him."""

from __future__ import annotations

from typing import TYPE_CHECKING

from citypay.wallet.client import WalletClient, WalletError

if TYPE_CHECKING:
    from citypay.day.script import Day

CITY = "gimpo"
GIFT = 100_000


def _giftable(day: Day, name: str) -> dict:
    address = day.residents[name].address
    response = day.http.get(f"/v1/cities/{CITY}/accounts/{address}/giftable")
    response.raise_for_status()
    return response.json()


def give(day: Day) -> None:
    dohyun, seoyeon, junho = (day.residents[n] for n in ("dohyun", "seoyeon", "junho"))
    before = _giftable(day, "dohyun")
    day.say(
        f"dohyun may give {before['giftable']:,} KRW (his money bought with KRW, not the "
        f"incentive; the month's caps: {before['monthlySendCap']:,} sent, "
        f"{before['monthlyReceiveCap']:,} received)"
    )
    with WalletClient(day.backend.url, dohyun, city=CITY) as wallet:
        gift = wallet.gift(seoyeon.address, GIFT)
        block = gift["blockNumber"]
        day.say(f"dohyun gives seoyeon {GIFT:,} KRW: {gift['status']} (block {block})")
        after = _giftable(day, "dohyun")
        over = after["monthlySendCap"] - after["sentThisMonth"] + 1
        try:
            refused = wallet.gift(junho.address, over)
            day.say(f"dohyun gives junho {over:,} KRW: {refused['status']} (not expected)")
        except WalletError as error:
            day.say(
                f"dohyun gives junho {over:,} KRW, past his month's send cap: refused "
                f"({error.error.get('code', error)}: {error.error.get('message', '')})"
            )
