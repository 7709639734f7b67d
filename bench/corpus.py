"""Benchmark corpus: MITRE ICS ATT&CK 18.1 re-issued with fresh ids to any size.

Each copy maps every STIX id in the bundle to a new UUID (consistently, so references still
resolve inside the copy), giving realistic objects: 75% relationships, custom x-mitre types.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson

_ID = re.compile(
    r'"([a-z0-9][a-z0-9-]*[a-z0-9]--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"'
)
KEEP = re.compile(r'"marking-definition--')  # markings and MITRE's identity stay shared


def shared_stix_dir() -> Path:
    env = os.environ.get("TANSIQ_SHARED_DIR")
    base = Path(env) if env else Path(__file__).resolve().parents[2] / "shared"
    return base / "data" / "stix"


def ics_objects() -> list[bytes]:
    bundle = orjson.loads((shared_stix_dir() / "ics-attack-18.1.json").read_bytes())
    return [orjson.dumps(o) for o in bundle["objects"]]


def reissued(n: int, seed: int = 0) -> Iterator[bytes]:
    """*n* objects as JSON texts: copies of ICS ATT&CK, every SDO/SRO with a fresh id."""
    base = ics_objects()
    fixed = {"identity", "marking-definition"}
    produced = 0
    copy = 0
    rnd = uuid.UUID(int=seed)
    while produced < n:
        mapping: dict[str, str] = {}

        def sub(m: re.Match[bytes]) -> bytes:
            old = m.group(1).decode()
            t = old.split("--", 1)[0]
            if t in fixed:
                return m.group(0)
            new = mapping.get(old)
            if new is None:
                new = f"{t}--{uuid.uuid5(rnd, f'{copy}:{old}')}"
                mapping[old] = new
            return b'"' + new.encode() + b'"'

        pattern = re.compile(_ID.pattern.encode())
        for text in base:
            obj_type = orjson.loads(text)["type"]
            if copy > 0 and obj_type in fixed:
                continue  # one copy of the shared identity and marking is enough
            yield pattern.sub(sub, text)
            produced += 1
            if produced >= n:
                return
        copy += 1
