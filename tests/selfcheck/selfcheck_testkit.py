"""Shared pieces for the go-red self-checks: reading which tests an inner pytest run failed."""

from __future__ import annotations

from collections.abc import Iterable


def failed_test_names(outlines: Iterable[str], prefixes: tuple[str, ...] = ("FAILED ", "ERROR ")
                      ) -> set[str]:
    """The function names (parameters dropped) of the ``-rfE`` summary lines.

    The node id is the first word after the outcome; the failure message after it may hold
    ``::`` itself (OpenSSL's ``rsa routines::invalid padding``), so it is never split on.
    """
    names = set()
    for line in outlines:
        if line.startswith(prefixes):
            nodeid = line.split(" ", 2)[1]
            names.add(nodeid.split("::")[-1].split("[")[0])
    return names
