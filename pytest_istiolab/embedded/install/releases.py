"""The Istio releases the embedded cluster models, and what differs between them.

Facts read from istio/istio at each tag (snapshot of 2026-08-22: newest patches 1.25.5,
1.26.8, 1.27.9): every release ships the same 14 CRDs (``manifests/charts/base/files/
crd-all.gen.yaml``) and the same ``default``/``demo``/``minimal``/``empty`` profiles
(``manifests/profiles``: no diff between the three minors); images are
``docker.io/istio/pilot:<version>`` and ``docker.io/istio/proxyv2:<version>``; ``istioctl x
precheck`` wants Kubernetes >= 1.29 (``k8sversion.MinK8SVersion = 29``) on all three.

Modelled differences:

* the CRDs' storage version of the networking types (DestinationRule, Gateway,
  ServiceEntry, Sidecar, VirtualService, WorkloadEntry, WorkloadGroup): ``v1beta1`` on 1.25
  and 1.26, ``v1`` on 1.27;
* every version string: ``istioctl version`` (client, control plane per istiod, data plane
  per proxy), the ``operator.istio.io/version`` and ``app.kubernetes.io/version`` labels,
  image tags, ``istioctl proxy-status``'s VERSION column, the ``istio_build`` metric;
* 1.27's native sidecars (:attr:`Release.native_sidecars`): with ``ENABLE_NATIVE_SIDECARS``
  at its 1.27 default ``auto`` and every node's kubelet >= 1.33 (the embedded node reports
  v1.33.1), the injector (webhook and ``istioctl kube-inject``) puts ``istio-proxy`` into
  ``initContainers`` right after ``istio-init`` with ``restartPolicy: Always`` and a
  ``preStop`` drain hook (:mod:`.sidecar`); the kubelet model runs it beside the app
  (``initContainerStatuses``: ``running``, ``started``, ``ready``), ``kubectl get pods`` counts
  it in READY (``2/2``), and exec, logs, the data plane, metrics and ``istioctl`` find it there.
  1.25 and 1.26 keep ``istio-proxy`` in ``containers`` (``ENABLE_NATIVE_SIDECARS=false``);
  the ``sidecar.istio.io/nativeSidecar`` annotation overrides either default.

Not modelled (a lab would observe them; listed so that nobody reads their absence as a
finding): changes in Envoy's behaviour between the Envoy releases bundled with each
Istio (the data plane model is that of 1.26); the injection template's other changes between
1.25 and 1.27 (``files/injection-template.yaml``); the ingress-gateway chart changes of 1.27.
During a canary every proxy runs with the default revision's mesh config (``istio``), not its
own revision's (``istio-<rev>``, used once ``istio`` is gone).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_VERSION = "1.26.0"


@dataclass(frozen=True)
class Release:
    version: str
    networking_storage: str
    native_sidecars: bool = False  # ENABLE_NATIVE_SIDECARS=auto: on with kubelets >= 1.33

    @property
    def minor(self) -> str:
        return self.version.rsplit(".", 1)[0]

    @property
    def revision_name(self) -> str:
        """The revision name the upgrade guides use for it: ``1-26-8``."""
        return self.version.replace(".", "-")


RELEASES: dict[str, Release] = {r.version: r for r in (
    Release("1.25.5", "v1beta1"),
    Release("1.26.0", "v1beta1"),
    Release("1.26.8", "v1beta1"),
    Release("1.27.9", "v1", native_sidecars=True),
)}
MODELLED_VERSIONS = tuple(RELEASES)


class UnknownRelease(ValueError):
    pass


def release(version: str) -> Release:
    """The modelled release ``version`` (a leading ``v`` is ignored)."""
    found = RELEASES.get(version.lstrip("v"))
    if found is None:
        raise UnknownRelease(f"Istio {version} is not modelled by the embedded cluster; it "
                             f"models {', '.join(MODELLED_VERSIONS)}")
    return found


def version_of_image(image: str) -> str:
    """``docker.io/istio/proxyv2:1.26.8`` -> ``1.26.8`` (``unknown`` without a tag)."""
    last = image.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1].split("-", 1)[0] if ":" in last else "unknown"


__all__ = ["DEFAULT_VERSION", "MODELLED_VERSIONS", "RELEASES", "Release", "UnknownRelease",
           "release", "version_of_image"]
