"""A local TCP port relayed to a pod's port through the Kubernetes API (``pods/portforward``).

Where the test host cannot reach the nodes (kind on macOS, a cloud cluster with private
nodes), :class:`PortForwardRelay` listens on ``127.0.0.1:<ephemeral>`` and forwards each
accepted connection through its own ``kubernetes.stream.portforward`` websocket to the
target port of a ready pod chosen at that moment (so a restarted gateway is followed).
Threads: one accepts, one per connection copies bytes both ways. The websocket is opened
on a dedicated ApiClient under a lock, because ``portforward()`` patches the ApiClient it
is given while the websocket connects.

Not modelled: UDP; a connection that cannot be forwarded (no ready pod, the kubelet's error
on the error channel) is closed without data, and the reason is logged.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
from collections.abc import Callable
from typing import Any

from kubernetes import client as k8s_client
from kubernetes.stream import portforward

log = logging.getLogger(__name__)
Obj = dict[str, Any]
PodPicker = Callable[[], tuple[str, int]]  # -> (pod name, port number) for a new connection
CHUNK = 65536


class PortForwardRelay:
    """``127.0.0.1:self.port`` -> ``pods/portforward`` of the pod ``pick()`` names."""

    def __init__(self, api_client: k8s_client.ApiClient, namespace: str, pick: PodPicker,
                 *, name: str = "port-forward") -> None:
        self.namespace, self.pick, self.name = namespace, pick, name
        self._core = k8s_client.CoreV1Api(api_client)
        self._connect_lock = threading.Lock()
        self._open: set[Any] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = int(self._listener.getsockname()[1])
        self._thread = threading.Thread(target=self._accept_loop, name=f"relay-{self.port}",
                                        daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        """Stop accepting and end every relayed connection."""
        with self._lock:
            self._closed = True
            socks, self._open = list(self._open), set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.close()
        self._thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name=f"relay-{self.port}-conn",
                             daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        remote: Any = None
        forward: Any = None
        try:
            pod, port = self.pick()
            with self._connect_lock:
                forward = portforward(self._core.connect_get_namespaced_pod_portforward, pod,
                                      self.namespace, ports=str(port))
            remote = forward.socket(port)
            if not self._track(conn, remote):
                return
            _pipe(conn, remote)
            if forward.error(port):
                log.warning("%s to %s/%s:%s: %s", self.name, self.namespace, pod, port,
                            forward.error(port))
        except Exception as err:  # no pod, API refused: the client sees the connection end
            log.warning("%s: cannot forward a connection: %s", self.name, err)
        finally:
            for sock in (conn, remote):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()
            with self._lock:
                self._open.discard(conn)
                self._open.discard(remote)

    def _track(self, *socks: Any) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._open.update(socks)
            return True


def _pipe(a: Any, b: Any) -> None:
    """Copy bytes both ways until either side ends."""
    peers = {a.fileno(): (a, b), b.fileno(): (b, a)}
    while True:
        try:
            ready, _, _ = select.select([a, b], [], [], 1.0)
        except (OSError, ValueError):  # closed under us
            return
        for sock in ready:
            src, dst = peers[sock.fileno()]
            try:
                data = src.recv(CHUNK)
                if not data:
                    return
                dst.sendall(data)
            except OSError:
                return
