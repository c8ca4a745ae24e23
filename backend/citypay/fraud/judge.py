"""Folds a deployment's events, in chain order, into the books and each city's activity, and
judges each with the city's rules: in memory, with no chain or database of its own (the engine
reads the events and stores the alerts).

A finding that overlaps in time the episode of the same rule and subject (its oldest event at or
before the episode's newest) continues that episode (more payments of the same pattern) instead
of raising another alert. An episode is kept as the position of its newest event, so telling
costs the same however long the episode runs, and only a finding that opens one gathers its
evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from citypay.chain.events import ChainEvent
from citypay.fraud.activity import CityActivity, PolicyChange, position
from citypay.fraud.config import FraudConfig
from citypay.fraud.rules import Crossing, Finding, Rule, horizon, rules_for
from citypay.ledger import Books


@dataclass
class _City:
    activity: CityActivity
    rules: list[Rule]


class Judge:
    def __init__(
        self,
        config: FraudConfig,
        cities: Iterable[str],
        limits: Callable[[str], dict[str, int]],
    ) -> None:
        """`limits(city)`: the city's limits a payment could be kept under, by name, asked
        again when its policy changes."""
        self.config = config
        self.limits = limits
        self.books = Books()
        self._cities = {code: self._city(code) for code in cities}
        self._episodes: dict[tuple[str, str, str], tuple[int, int]] = {}

    def _city(self, code: str) -> _City:
        rules = self.config.for_city(code)
        activity = CityActivity(self.books.city(code), horizon(rules), limits=self.limits(code))
        return _City(activity, rules_for(rules))

    def fold(self, event: ChainEvent) -> list[Finding]:
        """Folds the next event in; the findings that open an episode."""
        self.books.apply(event)
        city = self._cities.get(event.city)
        fact = city.activity.apply(event) if city else None
        if fact is None:
            return []
        if isinstance(fact, PolicyChange):
            city.activity.limits = self.limits(event.city)
            return []
        findings = []
        for rule in city.rules:
            if isinstance(fact, rule.fact):
                crossing = rule.cross(fact, city.activity)
                if crossing is not None and self._opens_episode(crossing):
                    findings.append(crossing.describe())  # before the next event is folded
        return findings

    def _opens_episode(self, crossing: Crossing) -> bool:
        slot = (crossing.city, crossing.rule, crossing.subject)
        newest = self._episodes.get(slot)
        trigger = position(crossing.trigger)
        if newest is not None and crossing.oldest <= newest:
            self._episodes[slot] = max(newest, trigger)
            return False
        self._episodes[slot] = trigger
        return True
