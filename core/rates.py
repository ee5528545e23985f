"""Rates written as settings ("100/m", "90/6s", "5000/h"): one parser for the partner API's limits
(the settings and each partner's own ``rate_limit``, which the admin validates with it) and the
Zoho call budget."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_UNIT_WORDS = {
    "s": ("s", "sec", "secs", "second", "seconds"),
    "m": ("m", "min", "mins", "minute", "minutes"),
    "h": ("h", "hr", "hrs", "hour", "hours"),
    "d": ("d", "day", "days"),
}
_UNIT = {word: unit for unit, words in _UNIT_WORDS.items() for word in words}
_RATE_RE = re.compile(r"\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*")

#: What a rate looks like, for error messages and help texts.
RATE_FORM = "a whole number of at least 1, a slash and a period: s, m, h or d (e.g. 100/m, 5000/h, 90/6s)"


@dataclass(frozen=True)
class Rate:
    limit: int
    period_seconds: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """'90/m' → 90 per 60 s; '90/6s' → 90 per 6 s (scaled-down budgets for benchmarks).

        A limit of 0 or a period of 0 is refused like any other text that is not a rate: a limit
        that lets nothing through is a lock-out, not a rate."""
        match = _RATE_RE.fullmatch(text or "")
        unit = _UNIT.get(match.group(3)) if match else None
        if unit is None:
            raise ValueError(f"not a rate: {text!r} (expected {RATE_FORM})")
        count, multiple = int(match.group(1)), int(match.group(2)) if match.group(2) else 1
        if count < 1 or multiple < 1:
            raise ValueError(f"not a rate: {text!r} (expected {RATE_FORM})")
        return cls(count, multiple * _PERIOD_SECONDS[unit])

    @property
    def capacity(self) -> int:
        """A token bucket's size: a tenth of the limit (integrations/zoho/budget.py says why)."""
        return max(1, self.limit // 10)

    @property
    def per_ms(self) -> float:
        return self.limit / (self.period_seconds * 1000)
