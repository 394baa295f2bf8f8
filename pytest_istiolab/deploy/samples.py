"""The sample apps the labs use, deployed from ``manifests/samples``, driven like the manual."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from pytest_istiolab import traffic, waiting
from pytest_istiolab.cluster import ClusterSession
from pytest_istiolab.kube import Applier, ExecResult, Kube, manifests

BOOKINFO = "samples/bookinfo/platform/kube/bookinfo.yaml"
BOOKINFO_GATEWAY = "samples/bookinfo/networking/bookinfo-gateway.yaml"
BOOKINFO_DESTINATION_RULES = "samples/bookinfo/networking/destination-rule-all.yaml"
HTTPBIN = "samples/httpbin/httpbin.yaml"
SLEEP = "samples/sleep/sleep.yaml"

BOOKINFO_DEPLOYMENTS = ("details-v1", "ratings-v1", "reviews-v1", "reviews-v2", "reviews-v3",
                        "productpage-v1")
BOOKINFO_SERVICES = ("details", "ratings", "reviews", "productpage")


def kube_injected(session: ClusterSession, *paths: str) -> list[manifests.Doc]:
    """``istioctl kube-inject -f <sample>``: the samples' documents with the sidecar injected.

    Several samples go through one ``istioctl kube-inject -f -`` (their documents joined on
    stdin): the same output as one run per file, one istioctl start instead of several.
    """
    if len(paths) == 1:
        out = session.istioctl.run(["kube-inject", "-f", str(manifests.resolve(paths[0]))]).stdout
    else:
        text = "\n---\n".join(manifests.resolve(p).read_text() for p in paths)
        out = session.istioctl.run(["kube-inject", "-f", "-"], input=text).stdout
    return manifests.load_text(out, f"istioctl kube-inject -f {' '.join(paths)}")


@dataclass
class App:
    """A deployed sample: its namespace, and the cluster it runs on."""

    session: ClusterSession
    namespace: str
    applier: Applier

    @property
    def kube(self) -> Kube:
        return self.session.kube

    def deploy(self) -> App:
        """Apply the sample's manifests and wait until it is ready (each sample defines it)."""
        raise NotImplementedError

    def pod(self, app: str) -> str:
        return self.kube.first_pod(self.namespace, f"app={app}")

    def exec(self, app: str, argv: list[str], container: str | None = None) -> ExecResult:
        """Run ``argv`` in the first pod of ``app`` (like ``kubectl exec deploy/app -c app --``)."""
        return self.kube.exec(self.namespace, self.pod(app), argv, container=container or app)


@dataclass
class Bookinfo(App):
    """Bookinfo: productpage -> details, reviews (v1, v2, v3) -> ratings."""

    exposed: bool = field(default=False)

    def deploy(self) -> Bookinfo:
        self.applier(BOOKINFO)
        self.kube.wait_for_deployments(self.namespace, list(BOOKINFO_DEPLOYMENTS))
        return self

    def expose(self) -> Bookinfo:
        """The ingress Gateway + VirtualService and the default DestinationRules (Lab 2), then
        wait until the page answers through the gateway: on a real cluster the gateway listens
        on its port only once istiod pushed the Gateway (before that: connection refused).
        A page that never answers is not an error here: the checks that need it fail, each
        with its own message, and the others still run."""
        self.applier(BOOKINFO_GATEWAY)
        self.applier(BOOKINFO_DESTINATION_RULES)
        self.exposed = True
        self.wait_for_page()
        return self

    def wait_for_page(self) -> bool:
        """Whether /productpage answered 200 through the ingress gateway (``consecutive``
        times in a row) within ``Timeouts.eventually``."""
        t = self.session.timeouts

        def answers() -> None:
            response = self.session.ingress.get("/productpage")
            assert response.status_code == 200, f"/productpage answered {response.status_code}"

        try:
            waiting.eventually(answers, timeout=t.eventually, interval=t.poll_interval,
                               consecutive=t.consecutive,
                               description="the product page answers through the ingress gateway")
        except AssertionError:
            return False
        return True

    def product_page(self, user: str | None = None) -> httpx.Response:
        """GET /productpage through the ingress gateway, logged in as ``user`` if given."""
        ingress = self.session.ingress
        if user is None:
            return ingress.get("/productpage")
        with ingress.session() as client:
            # productpage redirects to the Referer after login (none: a 500, no session)
            client.post("/login", data={"username": user, "passwd": "password"},
                        headers={"Referer": ingress.url("/productpage")})
            return client.get("/productpage")


@dataclass
class Sleep(App):
    """The ``sleep`` client (curlimages/curl): sends requests from inside the mesh."""

    def deploy(self) -> Sleep:
        self.applier(SLEEP)
        self.kube.wait_for_deployments(self.namespace, ["sleep"])
        return self

    def curl(self, url: str, **options: object) -> ExecResult:
        """One ``curl`` from the sleep container (options as :func:`traffic.curl_argv`)."""
        return self.exec("sleep", traffic.curl_argv(url, **options))  # type: ignore[arg-type]

    def batch(self, urls: list[str], **options: object) -> list[traffic.CurlResult]:
        """N requests in one exec: one ``-w`` line per transfer, parsed."""
        result = self.exec("sleep", traffic.batch_argv(urls, **options))  # type: ignore[arg-type]
        return traffic.parse_batch(result.stdout)


@dataclass
class Httpbin(App):
    """httpbin (the 1.26 sample: go-httpbin, Service 8000 -> 8080)."""

    def deploy(self) -> Httpbin:
        self.applier(HTTPBIN)
        self.kube.wait_for_deployments(self.namespace, ["httpbin"])
        return self
