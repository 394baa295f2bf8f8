"""Timestamps and the human-readable durations kube-apiserver prints in AGE columns."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_rfc3339(value: str | None) -> float | None:
    if not value:
        return None
    try:
        text = value.replace("Z", "+00:00")
        return datetime.fromisoformat(text).astimezone(UTC).timestamp()
    except ValueError:
        return None


def age(timestamp: str | None, now: float) -> str:
    when = parse_rfc3339(timestamp)
    return "<unknown>" if when is None else human_duration(now - when)


def human_duration(seconds_f: float) -> str:
    """apimachinery's ``duration.HumanDuration``: 40s, 5m2s, 13m, 3h20m, 17d, 2y30d."""
    seconds = int(seconds_f)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if dy == 0 else f"{years}y{dy}d"
    return f"{hours // 24 // 365}y"
