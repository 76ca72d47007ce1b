"""Durations as configuration writes them: '30s', '5m', '1h', '6h', '1d'."""

from __future__ import annotations

import re

_DELAY = re.compile(r"^(\d+)(s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_delay(text: str) -> int:
    """'30s' → 30, '5m' → 300, '1h' → 3600, '6h' → 21600, '1d' → 86400 seconds."""
    match = _DELAY.match(text)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"retry delay {text!r}: expected a positive number and s, m, h or d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
