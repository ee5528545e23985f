"""Rates written as settings ("100/m", "90/6s", "5000/h"): one parser for the partner API's limits
and the Zoho call budget."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Rate:
    limit: int
    period_seconds: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """'90/m' → 90 per 60 s; '90/6s' → 90 per 6 s (scaled-down budgets for benchmarks)."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*)\s*([smhd])\w*\s*", text or "")
        if not match:
            raise ValueError(f"not a rate: {text!r} (expected e.g. 90/m)")
        count, multiple, unit = match.groups()
        return cls(int(count), (int(multiple) if multiple else 1) * _PERIOD_SECONDS[unit])

    @property
    def capacity(self) -> int:
        """A token bucket's size: a tenth of the limit (integrations/zoho/budget.py says why)."""
        return max(1, self.limit // 10)

    @property
    def per_ms(self) -> float:
        return self.limit / (self.period_seconds * 1000)
