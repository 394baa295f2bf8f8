"""Envoy's ``%RESPONSE_FLAGS%``: several flags joined by commas, in Envoy's fixed order.

Envoy keeps the flags of a stream as a set and prints them in the order of its
``CoreResponseFlag`` enum, not in the order they were set: a delayed request whose
client gave up logs ``DI,DC``, connect failures retried to the limit ``UF,URX``, a
per-try timeout out of retries ``UT,URX``. No flag at all prints ``-``.
"""

from __future__ import annotations

ORDER = ("LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL", "UAEX",
         "RLSE", "DC", "URX", "SI", "IH", "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC",
         "OM", "DF", "DO", "DR")
_RANK = {flag: index for index, flag in enumerate(ORDER)}


def split(flags: str | None) -> set[str]:
    """``"UF,URX"`` -> {"UF", "URX"}; ``"-"``, empty or None -> the empty set."""
    return {f for f in (flags or "").split(",") if f and f != "-"}


def merge(*flag_strings: str | None) -> str:
    """The union of several flag strings, printed as Envoy prints it."""
    found: set[str] = set()
    for text in flag_strings:
        found |= split(text)
    if not found:
        return "-"
    return ",".join(sorted(found, key=lambda f: (_RANK.get(f, len(ORDER)), f)))


def has(flags: str | None, flag: str) -> bool:
    return flag in split(flags)
