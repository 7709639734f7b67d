"""STIX 2.1 timestamps <-> integer microseconds since the Unix epoch (UTC).

STIX timestamps are RFC 3339 in UTC with a mandatory ``Z`` and any number of fraction digits.
Integers compare and index faster than text and make precision differences ("...48Z" vs
"...48.000Z") the same instant.  Digits beyond microseconds are truncated.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime
from functools import lru_cache

# ASCII digits only: ``\d`` would match any Unicode digit ("٣") and int() would take it.
_TS = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?Z\Z"
)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

# Durations in the microseconds every stored time is counted in.
SECOND_US = 1_000_000
MINUTE_US = 60 * SECOND_US
DAY_US = 86_400 * SECOND_US


def to_micros(value: object) -> int:
    """Parse a STIX timestamp; raise ValueError when it is not one."""
    if type(value) is not str:
        raise ValueError("timestamp must be a string")
    return _parse(value)


# Validation and the store both read ``created``/``modified``: the second read is a cache hit.
@lru_cache(maxsize=8192)
def _parse(value: str) -> int:
    m = _TS.match(value)
    if m is None:
        raise ValueError("not a STIX timestamp (YYYY-MM-DDTHH:MM:SS[.s]Z)")
    y, mo, d, h, mi, s, frac = m.groups()
    hour, minute, second = int(h), int(mi), int(s)
    if hour > 23 or minute > 59 or second > 60:
        raise ValueError("time of day out of range")
    try:
        days = date(int(y), int(mo), int(d)).toordinal() - _EPOCH_ORDINAL
    except ValueError as exc:
        raise ValueError(f"invalid date: {exc}") from None
    micros = (days * 86400 + hour * 3600 + minute * 60 + second) * 1_000_000
    if frac:
        micros += int((frac + "00000")[:6])
    return micros


def is_timestamp(value: object) -> bool:
    """True when *value* is a valid STIX timestamp."""
    try:
        to_micros(value)
    except ValueError:
        return False
    return True


def version_micros(obj: dict[str, object]) -> int:
    """The version of a STIX object as the store orders versions: ``modified``, else
    ``created``, else 0 (µs).  Raise ValueError for a malformed timestamp."""
    value = obj.get("modified", obj.get("created"))
    return 0 if value is None else to_micros(value)


def from_micros(micros: int) -> str:
    """Format microseconds as a STIX/TAXII timestamp with microsecond precision."""
    dt = datetime.fromtimestamp(micros // 1_000_000, tz=UTC)
    # (not strftime: its %Y writes a year before 1000 without leading zeros, "1-01-01")
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:"
        f"{dt.second:02d}.{micros % 1_000_000:06d}Z"
    )


def now_micros() -> int:
    """The current time in microseconds."""
    return time.time_ns() // 1000
