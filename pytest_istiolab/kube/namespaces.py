"""Lab namespaces: unique per run, labelled for injection as the lab needs, removed after."""

from __future__ import annotations

from pytest_istiolab.constants import LABEL_MANAGED, LABEL_RUN, LABEL_SESSION
from pytest_istiolab.kube.client import Kube


def lab_namespace_name(lab: str, run_id: str) -> str:
    """``lab02-1a2b3c``: readable in ``kubectl get ns`` and unique per run."""
    return f"{lab}-{run_id}".lower()[:63]


class Namespaces:
    """Creates namespaces for a run and deletes them (unless kept)."""

    def __init__(self, kube: Kube, run_id: str, session: str | None = None) -> None:
        """``run_id``: this worker's scope; ``session``: the whole run's id (all workers)."""
        self.kube, self.run_id, self.session = kube, run_id, session
        self.created: list[str] = []

    def create(self, name: str, *, inject: bool = True) -> str:
        labels = {LABEL_MANAGED: "pytest-istiolab", LABEL_RUN: self.run_id}
        if self.session:
            labels[LABEL_SESSION] = self.session
        if inject:
            labels["istio-injection"] = "enabled"
        self.kube.create_namespace(name, labels)
        self.created.append(name)
        return name

    def delete(self, name: str) -> None:
        self.kube.delete_namespace(name, wait=True)
        if name in self.created:
            self.created.remove(name)

    def delete_all(self) -> None:
        for name in reversed(list(self.created)):
            self.delete(name)
