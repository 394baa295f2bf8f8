"""A per-container file system for what exec'd tools write (``curl -o``, cookie jars).

Files live as long as the pod (they are keyed by pod uid), are private to one container,
and start empty: images' own files are not modelled. Relative paths are taken from ``/``.
"""

from __future__ import annotations

import posixpath
import threading
from typing import Any

from ..mesh.state import extension
from ..runtime import Runtime

Obj = dict[str, Any]
DISCARD = "/dev/null"


class ContainerFiles:
    """The files of one container (thread-safe: exec calls run in worker threads)."""

    def __init__(self) -> None:
        self._files: dict[str, bytes] = {}
        self._lock = threading.Lock()

    @staticmethod
    def path(name: str) -> str:
        return posixpath.normpath(posixpath.join("/", name))

    def read(self, name: str) -> bytes | None:
        with self._lock:
            return self._files.get(self.path(name))

    def write(self, name: str, data: bytes) -> None:
        path = self.path(name)
        if path == DISCARD:
            return
        with self._lock:
            self._files[path] = data

    def append(self, name: str, data: bytes) -> None:
        path = self.path(name)
        if path == DISCARD:
            return
        with self._lock:
            self._files[path] = self._files.get(path, b"") + data

    def exists(self, name: str) -> bool:
        return self.read(name) is not None or self.path(name) == DISCARD


def files_of(runtime: Runtime, pod: Obj, container: str) -> ContainerFiles:
    table: dict[tuple[str, str], ContainerFiles] = extension(runtime, "container-files", dict)
    key = (str(pod["metadata"].get("uid") or pod["metadata"]["name"]), container)
    with _LOCK:
        return table.setdefault(key, ContainerFiles())


_LOCK = threading.Lock()
