"""An ordered, case-insensitive HTTP header list, as an HTTP/1.1 message carries it.

Envoy lower-cases every header name it forwards, so the proxy hops call :meth:`Headers.lowered`;
applications keep their own spelling (Go canonical ``Content-Type``, Flask ``Content-Type``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class Headers:
    """Header fields in wire order; lookups ignore case, repeated names are kept."""

    def __init__(self, items: Iterable[tuple[str, str]] | dict[str, str] | None = None) -> None:
        pairs = items.items() if isinstance(items, dict) else (items or ())
        self._items: list[tuple[str, str]] = [(str(k), str(v)) for k, v in pairs]

    # ------------------------------------------------------------- reading
    def get(self, name: str, default: str | None = None) -> str | None:
        low = name.lower()
        for key, value in self._items:
            if key.lower() == low:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        low = name.lower()
        return [v for k, v in self._items if k.lower() == low]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    # ------------------------------------------------------------- writing
    def add(self, name: str, value: str) -> None:
        self._items.append((name, value))

    def set(self, name: str, value: str) -> None:
        """Replace every field called ``name`` by one, keeping the first one's position."""
        low, out, placed = name.lower(), [], False
        for key, val in self._items:
            if key.lower() != low:
                out.append((key, val))
            elif not placed:
                out.append((name, value))
                placed = True
        if not placed:
            out.append((name, value))
        self._items = out

    def setdefault(self, name: str, value: str) -> str:
        current = self.get(name)
        if current is None:
            self.add(name, value)
            return value
        return current

    def remove(self, name: str) -> None:
        low = name.lower()
        self._items = [(k, v) for k, v in self._items if k.lower() != low]

    def copy(self) -> Headers:
        return Headers(self._items)

    def lowered(self) -> Headers:
        """The same fields with lower-case names (what Envoy emits on HTTP/1.1)."""
        return Headers((k.lower(), v) for k, v in self._items)
