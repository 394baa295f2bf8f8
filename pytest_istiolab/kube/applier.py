"""Apply manifests from ``manifests/`` and remove them again, newest first."""

from __future__ import annotations

from pathlib import Path

from pytest_istiolab.errors import ClusterError
from pytest_istiolab.kube import manifests
from pytest_istiolab.kube.client import Kube, ObjectRef


class Applier:
    """``applier("lab03-traffic/virtual-service-all-v1.yaml")`` applies into ``namespace``.

    Everything applied is remembered and deleted by :meth:`cleanup` (reverse order), so a
    test leaves the cluster as it found it whatever its outcome.
    """

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube, self.namespace = kube, namespace
        self.applied: list[ObjectRef] = []
        self.sources: list[tuple[str, str]] = []  # (manifest, rendered YAML) for reports

    def __call__(self, manifest: str | Path, *, namespace: str | None = None,
                 **variables: str) -> list[ObjectRef]:
        return self.apply_docs(manifests.load(manifest, None, **variables), str(manifest),
                               namespace=namespace)

    def apply_docs(self, docs: list[manifests.Doc], source: str, *,
                   namespace: str | None = None) -> list[ObjectRef]:
        """Apply parsed documents (``source`` names them in reports and errors)."""
        self.sources.append((source, manifests.dump(docs)))
        ns = namespace or self.namespace
        refs = []
        for doc in docs:  # one by one: what was applied before a failure is still cleaned up
            # Remember the object before the request: an interrupt (Ctrl-C) landing while
            # the request is in flight must not leave an object nobody will delete.
            expected = self.kube.ref_for(doc, ns)
            new = expected not in self.applied
            if new:
                self.applied.append(expected)
            try:
                ref = self.kube.apply([doc], namespace=ns)[0]
            except ClusterError as err:  # the server answered: nothing was created
                if new:
                    self.applied.remove(expected)
                raise ClusterError(f"{source}: {err.cause}", err.fix) from err
            if ref != expected and ref not in self.applied:
                self.applied.append(ref)
            refs.append(ref)
        return refs

    def delete(self, manifest: str | Path, *, namespace: str | None = None,
               **variables: str) -> None:
        """Delete what ``manifest`` describes (like ``kubectl delete -f``; missing is fine)."""
        docs = manifests.load(manifest, None, **variables)
        ns = namespace or self.namespace
        refs = [self.kube.ref_for(doc, ns) for doc in docs]
        self.kube.delete_all(refs)
        self.applied = [r for r in self.applied if r not in refs]

    def cleanup(self) -> None:
        refs, self.applied = list(self.applied), []
        self.kube.delete_all(refs)  # deletes newest first
