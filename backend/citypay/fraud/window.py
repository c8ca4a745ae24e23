"""A rule's running view of one feed of a city's activity (a merchant's payments, a merchant's
refunds): the facts that pass the rule's test from a moving start time on, with their count,
value and payers kept up to date as facts come in and leave.

Each fact of the feed is looked at once when it comes in and once when it leaves, so a rule that
asks about a window of thousands of payments at every payment pays for the new ones only: its
cost per event does not grow with the window.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from citypay.fraud.activity import position


def everything(fact: Any) -> bool:
    return True


class Window:
    """Facts with `event`, `time`, `value` and `payer` (payments, refunds), oldest first."""

    def __init__(self, test: Callable[[Any], bool] = everything) -> None:
        self.test = test  # fixed for the window's life: the rule keys its windows by what it reads
        self.facts: deque = deque()
        self.value = 0
        self.payers: Counter[str] = Counter()  # facts in the window by payer
        self._seen: tuple[int, int] = (-1, -1)  # the newest fact of the feed looked at

    def follow(self, feed: Sequence, since: int) -> Window:
        """Takes in the feed's facts it has not looked at (at or after `since`, unix seconds),
        and lets go of those before `since`. `since` never goes back: the facts before it that
        were never looked at are skipped for good."""
        new = []
        for fact in reversed(feed):
            if fact.time < since or position(fact.event) <= self._seen:
                break
            new.append(fact)
        if feed:
            self._seen = position(feed[-1].event)
        for fact in reversed(new):
            if self.test(fact):
                self.take(fact)
        while self.facts and self.facts[0].time < since:
            self.drop(self.facts.popleft())
        return self

    def take(self, fact: Any) -> None:
        self.facts.append(fact)
        self.value += fact.value
        self.payers[fact.payer] += 1

    def drop(self, fact: Any) -> None:
        self.value -= fact.value
        left = self.payers[fact.payer] - 1
        if left:
            self.payers[fact.payer] = left
        else:
            del self.payers[fact.payer]

    def __len__(self) -> int:
        return len(self.facts)

    def newest_first(self) -> Iterator:
        return reversed(self.facts)
