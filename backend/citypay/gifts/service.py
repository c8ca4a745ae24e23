"""Gifts (선물하기) a resident signed: checked and recorded once in the request, then sent and
followed by a worker thread (sender.py), which also picks up, at start-up, what a restart left
submitted or accepted. And what a wallet shows before its resident signs: what it may give."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from eth_account.signers.local import LocalAccount
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from citypay.authorization import SignedAuthorization, TokenDomain
from citypay.chain.deployment import City, Deployment
from citypay.chain.outbox import Outbox
from citypay.chain.relayed import IDLE_ROUND_SECONDS, RelayStatus, hex32
from citypay.core.config import Settings
from citypay.core.errors import NotFound
from citypay.core.validity import Validity
from citypay.core.worker import Worker
from citypay.db.locks import lock_key, locked_session
from citypay.db.session import Database
from citypay.gifts.checks import (
    chain_refusal,
    gift_domain,
    gifts_of,
    in_flight_refusal,
    message_refusal,
    the_same,
)
from citypay.gifts.models import Gift
from citypay.gifts.sender import gift_sender


@dataclass(frozen=True)
class Giftable:
    """What an account may give now and this month's tally, read at one block."""

    block: int
    giftable: int
    month: int
    sent: int
    received: int
    send_cap: int
    receive_cap: int


class GiftService:
    def __init__(
        self,
        db: Database,
        deployment: Deployment,
        settings: Settings,
        outbox: Outbox,
        *,
        relayers: dict[str, LocalAccount],
    ) -> None:
        self.db = db
        self.deployment = deployment
        self.settings = settings
        self.relayers = relayers  # by city code: each city's gifts from its own relayer
        self.sender = gift_sender(db, deployment, outbox, relayers)
        self.worker = Worker("gifts", self.sender.round, IDLE_ROUND_SECONDS)

    @cache  # noqa: B019 - one service per app; a city's gifts domain never changes
    def domain(self, city_code: str) -> TokenDomain:
        return gift_domain(self.deployment.city(city_code))

    # --- the request -------------------------------------------------------------------------

    def request(self, city: City, gift: SignedAuthorization) -> tuple[Gift, bool]:
        """(the recorded gift, whether it is new): new once every check passed, or the one this
        giver's nonce made before."""
        existing = self._find(city.code, gift)
        if existing is not None:
            return the_same(existing, gift), False
        now = self.deployment.gateway.timestamp()
        for refusal in (
            message_refusal(
                self.domain(city.code), gift, now=now, validity=Validity.of(self.settings)
            ),
            chain_refusal(city, self.relayers[city.code], gift),
        ):
            if refusal is not None:
                raise refusal
        giftable = gifts_of(city).call("giftableOf", gift.from_)
        try:
            # What the giver may still give, read and spent under its lock: two gifts of one
            # giver at once, on any replicas, cannot both take the same money.
            giver = lock_key("gift", city.code, gift.from_)
            with locked_session(self.db, [giver]) as session:
                refusal = in_flight_refusal(session, city, gift, giftable)
                if refusal is not None:
                    raise refusal
                recorded = Gift(
                    city=city.code,
                    giver=gift.from_,
                    receiver=gift.to,
                    nonce=hex32(gift.nonce),
                    value=gift.value,
                    valid_after=gift.valid_after,
                    valid_before=gift.valid_before,
                    v=gift.v,
                    r=hex32(gift.r),
                    s=hex32(gift.s),
                    status=RelayStatus.ACCEPTED,
                )
                session.add(recorded)
        except IntegrityError:  # the same gift posted at the same time: the first one stands
            return the_same(self._find(city.code, gift), gift), False
        self.worker.wake()
        return recorded, True

    def _find(self, city: str, gift: SignedAuthorization) -> Gift | None:
        with self.db.session() as session:
            return session.scalar(
                select(Gift).where(
                    Gift.city == city, Gift.giver == gift.from_, Gift.nonce == hex32(gift.nonce)
                )
            )

    def get(self, city: str, gift_id: int) -> Gift:
        with self.db.session() as session:
            found = session.get(Gift, gift_id)
        if found is None or found.city != city:
            raise NotFound(
                "unknown_gift",
                f"{city} has no gift {gift_id}",
                field="id",
                value=gift_id,
                accepted="the id the gift's POST answered with",
            )
        return found

    # --- before signing ----------------------------------------------------------------------

    def giftable(self, city: City, account: str) -> Giftable:
        gifts = gifts_of(city)
        block, (giftable, tally, send_cap, receive_cap) = gifts.gateway.read_at_head(
            [
                (gifts, "giftableOf", (account,)),
                (gifts, "giftTallyOf", (account,)),
                (gifts, "monthlySendCap", ()),
                (gifts, "monthlyReceiveCap", ()),
            ]
        )
        return Giftable(
            block=block,
            giftable=giftable,
            month=tally.month,
            sent=tally.sent,
            received=tally.received,
            send_cap=send_cap,
            receive_cap=receive_cap,
        )
