"""``istiolab-embedded`` / ``python -m pytest_istiolab.embedded``: serve an embedded cluster.

Prints the kubeconfig and the istioctl to use, then serves until interrupted, so a person can
follow the lab manual by hand with kubectl (>= 1.30), istioctl, curl and openssl.

Exit status: 0 stopped by Ctrl-C or SIGTERM while serving, 2 a usage error (a bad or busy
``--port``), 1 any other failure to start, 130 interrupted before it served. Whatever the
exit, a temporary directory of its own is removed and the cluster's listeners are closed.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from .cluster import EmbeddedCluster
from .install.releases import DEFAULT_VERSION, MODELLED_VERSIONS

PROG = "istiolab-embedded"
EXIT_OK, EXIT_START, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@contextlib.contextmanager
def _no_interrupts() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back (delivered when it ends) while a step must not be cut."""
    held = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _start_error(exc: BaseException, port: int) -> tuple[str, int]:
    cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
    if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
        return (f"error: 127.0.0.1:{port} is already in use, so the API server cannot listen "
                "there\n  fix: pass a free --port, or --port 0 (the default) for any free port",
                EXIT_USAGE)
    if isinstance(cause, OSError) and cause.errno == errno.EACCES:
        return (f"error: no permission to listen on 127.0.0.1:{port}\n"
                "  fix: pass a --port above 1023, or --port 0 for any free port", EXIT_USAGE)
    return f"error: cannot start: {exc}", EXIT_START


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to write the kubeconfig and bin/istioctl (default: a temp dir)")
    parser.add_argument("--port", type=int, default=0, help="API server port (default: any free)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the mesh's randomness")
    parser.add_argument("--istio-version", default=DEFAULT_VERSION, choices=MODELLED_VERSIONS,
                        help="the release bin/istioctl installs (bin/istioctl-<version> are "
                             f"there for each of {', '.join(MODELLED_VERSIONS)})")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a TCP port (0 to 65535; 0: any free port)")
    if args.seed is not None and not 0 <= args.seed < 2**32:
        parser.error(f"--seed {args.seed} is out of range (0 to 4294967295)")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    workdir: Path | None = None
    own_dir = args.dir is None
    cluster: EmbeddedCluster | None = None
    status = EXIT_INTERRUPTED
    try:
        with _no_interrupts():  # the temp dir is ours before an interrupt can land
            workdir = args.dir or Path(tempfile.mkdtemp(prefix="istiolab-embedded-"))
        cluster = EmbeddedCluster(workdir, seed=args.seed, port=args.port,
                                  istio_version=args.istio_version)
        try:
            cluster.start()
        except (OSError, RuntimeError) as exc:
            message, status = _start_error(exc, args.port)
            print(f"{PROG}: {message}", file=sys.stderr)
            return status
        for line in (f"API server:  {cluster.url}", f"seed:        {cluster.seed}",
                     f"export KUBECONFIG={cluster.kubeconfig}",
                     f"export PATH={cluster.bin_dir}:$PATH   # istioctl "
                     f"{cluster.istio_version} for this cluster (istioctl-<version> for the "
                     "other modelled releases)"):
            print(line, flush=True)
        status = EXIT_OK  # from the line that says so on, Ctrl-C is the way to stop it
        print("Serving; press Ctrl-C to stop.", flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        if status == EXIT_INTERRUPTED:
            print(f"{PROG}: interrupted while starting; stopped, nothing left behind",
                  file=sys.stderr)
    finally:
        # A second Ctrl-C must not cut the cleanup short (ignored, not held: we are leaving).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if cluster is not None:
            cluster.stop()
        if own_dir and workdir is not None:  # a temp dir of our own: leave nothing
            shutil.rmtree(workdir, ignore_errors=True)
        with contextlib.suppress(BrokenPipeError):
            sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
