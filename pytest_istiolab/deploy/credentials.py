"""Gateway credentials: the Lab 6 Secrets in ``istio-system``, created as the manual does.

``kubectl create -n istio-system secret tls NAME --key=K --cert=C`` is :meth:`create_tls`,
``kubectl create ... secret generic NAME --from-file=tls.key=... --from-file=ca.crt=...`` is
:meth:`create_generic`, ``kubectl -n istio-system delete secret NAME`` is :meth:`delete`.
Every Secret created is deleted by :meth:`cleanup`. The API calls are recorded for reports by
the Kube client as ``apply v1/Secret ...`` with no data; errors name the Secret, never its
contents.
"""

from __future__ import annotations

from pytest_istiolab.kube import Kube, ObjectRef
from pytest_istiolab.security import Credential, generic_secret, tls_secret

ISTIO_NAMESPACE = "istio-system"


class GatewayCredentials:
    """Secrets for the ingress gateway's ``credentialName`` (namespace ``istio-system``)."""

    def __init__(self, kube: Kube, namespace: str = ISTIO_NAMESPACE) -> None:
        self.kube, self.namespace = kube, namespace
        self.created: list[str] = []

    def _ref(self, name: str) -> ObjectRef:
        return ObjectRef("v1", "Secret", name, self.namespace)

    def create_tls(self, name: str, cred: Credential) -> None:
        self.kube.apply([tls_secret(name, self.namespace, cred)], namespace=self.namespace)
        self._remember(name)

    def create_generic(self, name: str, files: dict[str, bytes]) -> None:
        self.kube.apply([generic_secret(name, self.namespace, files)], namespace=self.namespace)
        self._remember(name)

    def replace_tls(self, name: str, cred: Credential) -> None:
        """``kubectl delete secret NAME`` then ``kubectl create secret tls NAME ...``."""
        self.delete(name)
        self.create_tls(name, cred)

    def replace_generic(self, name: str, files: dict[str, bytes]) -> None:
        self.delete(name)
        self.create_generic(name, files)

    def delete(self, name: str) -> None:
        self.kube.delete(self._ref(name))
        if name in self.created:
            self.created.remove(name)

    def _remember(self, name: str) -> None:
        if name not in self.created:
            self.created.append(name)

    def cleanup(self) -> None:
        names, self.created = list(self.created), []
        self.kube.delete_all([self._ref(n) for n in names])
