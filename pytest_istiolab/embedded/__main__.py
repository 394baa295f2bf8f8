"""``istiolab-embedded`` / ``python -m pytest_istiolab.embedded``: serve an embedded cluster.

Prints the kubeconfig and the istioctl to use, then serves until interrupted, so a person can
follow the lab manual by hand with kubectl (>= 1.30), istioctl, curl and openssl.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
from pathlib import Path

from .cluster import EmbeddedCluster
from .install.releases import DEFAULT_VERSION, MODELLED_VERSIONS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="istiolab-embedded", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to write the kubeconfig and bin/istioctl (default: a temp dir)")
    parser.add_argument("--port", type=int, default=0, help="API server port (default: any free)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the mesh's randomness")
    parser.add_argument("--istio-version", default=DEFAULT_VERSION, choices=MODELLED_VERSIONS,
                        help="the release bin/istioctl installs (bin/istioctl-<version> are "
                             f"there for each of {', '.join(MODELLED_VERSIONS)})")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        cluster = EmbeddedCluster(args.dir, seed=args.seed, port=args.port,
                                  istio_version=args.istio_version).start()
    except OSError as exc:
        print(f"istiolab-embedded: cannot start: {exc}", file=sys.stderr)
        return 1
    print(f"API server:  {cluster.url}")
    print(f"seed:        {cluster.seed}")
    print(f"export KUBECONFIG={cluster.kubeconfig}")
    print(f"export PATH={cluster.bin_dir}:$PATH   # istioctl {cluster.istio_version} for this "
          "cluster (istioctl-<version> for the other modelled releases)")
    print("Serving; press Ctrl-C to stop.", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
        if args.dir is None:  # a temp dir of our own: leave nothing behind
            shutil.rmtree(cluster.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
