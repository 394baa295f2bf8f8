"""The curl, fortio and kubectl invocations of the istio.io tasks for the Labs 1-9 features.

Collected from the tasks' published commands (istio.io ``content/en/docs/tasks/**/snips.sh``:
circuit-breaking, mirroring, egress-control, egress-gateway, request-timeouts, ingress-control,
authn-policy, authz-jwt, authz-http, access-log, querying-metrics, and Bookinfo's getting
started). Request routing, traffic shifting, fault injection, authz-http and request-timeouts
run no tool in a pod (browser and ``kubectl apply`` only). Every in-pod command runs through
the real kubectl's exec into the embedded cluster; every kubectl command that needs no
sample file runs as the task types it. An invocation the embedded cluster models must work;
any other must end in one clear error that says what is not modelled (or, for kubectl, the
error kubectl itself gives). Host-side curls against ``$INGRESS_HOST`` are the ingress
checks' business (``traffic.Ingress``) and are counted, not run here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from api_testkit import KUBECTL, Kubectl
from mesh_testkit import Kit

from pytest_istiolab.embedded.api import ApiServer
from pytest_istiolab.embedded.tools import reads_stdin, run_in_container

OK, USAGE = "modelled", "usage error"
WF = "%{http_code}\n"


@dataclass(frozen=True)
class Invocation:
    task: str
    pod: str  # app label of the pod (namespace/app), "" for a kubectl command
    container: str
    argv: tuple[str, ...]
    expect: str  # OK or USAGE
    shows: str = ""  # a piece of the output (stdout, or stderr for a usage error)


def _in(task: str, pod: str, container: str, *argv: str, expect: str = OK,
        shows: str = "") -> Invocation:
    return Invocation(task, pod, container, tuple(argv), expect, shows)


IN_POD = [
    _in("circuit-breaking", "default/fortio", "fortio", "/usr/bin/fortio", "load", "-curl",
        "http://httpbin:8000/get", shows='"url"'),
    _in("circuit-breaking", "default/fortio", "fortio", "/usr/bin/fortio", "load", "-c", "2",
        "-qps", "0", "-n", "20", "-loglevel", "Warning", "http://httpbin:8000/get",
        shows=""),
    _in("circuit-breaking", "default/fortio", "istio-proxy", "pilot-agent", "request", "GET",
        "stats", shows="server.live"),  # cluster stats need the task's proxyStatsMatcher
    _in("mirroring", "default/sleep", "sleep", "curl", "-sS", "http://httpbin:8000/headers",
        shows='"headers"'),
    _in("egress-control", "default/sleep", "sleep", "curl", "-sSI", "https://www.google.com",
        expect=USAGE, shows="not model"),
    _in("egress-control", "default/sleep", "sleep", "curl", "-sI", "https://edition.cnn.com",
        expect=USAGE, shows="not model"),  # said even under -s
    _in("egress-control", "default/sleep", "sleep", "curl", "-sS", "http://httpbin.org/headers",
        shows='"Host": "httpbin.org"'),
    _in("egress-control", "default/sleep", "sleep", "time", "curl", "-o", "/dev/null", "-sS",
        "-w", WF, "http://httpbin.org/delay/5", expect=USAGE, shows="command not found"),
    _in("egress-gateway", "default/sleep", "sleep", "curl", "-sSL", "-o", "/dev/null", "-D", "-",
        "http://edition.cnn.com/politics", expect=USAGE, shows="not model"),
    _in("egress-gateway", "default/sleep", "sleep", "curl", "-sSL", "-o", "/dev/null", "-D", "-",
        "https://edition.cnn.com/politics", expect=USAGE, shows="not model"),
    _in("authn-policy", "bar/sleep", "sleep", "curl", "http://httpbin.foo:8000/ip", "-s", "-o",
        "/dev/null", "-w", WF, shows="200"),
    _in("authn-policy", "foo/sleep", "sleep", "curl", "-s", "http://httpbin.legacy:8000/ip",
        "-s", "-o", "/dev/null", "-w", "sleep.foo to httpbin.legacy: %{http_code}\n",
        shows="sleep.foo to httpbin.legacy: 200"),
    _in("authn-policy", "foo/sleep", "sleep", "curl", "-s", "http://httpbin.foo:8000/headers",
        "-s", shows="X-Forwarded-Client-Cert"),
    _in("authn-policy", "foo/sleep", "sleep", "curl", "http://httpbin.legacy:8000/headers",
        "-s", shows='"headers"'),
    _in("authn-policy", "legacy/sleep", "sleep", "curl", "http://httpbin.foo:8000/ip", "-s",
        "-o", "/dev/null", "-w", WF, shows="200"),
    _in("authz-jwt", "foo/sleep", "sleep", "curl", "http://httpbin.foo:8000/headers", "-s",
        "-o", "/dev/null", "-H", "Authorization: Bearer invalidToken", "-w", WF, shows="200"),
    _in("authz-jwt", "foo/sleep", "sleep", "curl", "http://httpbin.foo:8000/headers", "-s",
        "-o", "/dev/null", "-w", WF, shows="200"),
    _in("access-log", "default/sleep", "sleep", "curl", "-sS", "-v", "httpbin:8000/status/418",
        shows="teapot"),
    _in("bookinfo", "default/ratings", "ratings", "curl", "-sS", "productpage:9080/productpage",
        shows="<title>Simple Bookstore App</title>"),
]
KUBECTL_TABLE = [
    _in("circuit-breaking", "", "", "get", "destinationrule", "httpbin", "-o", "yaml",
        shows="maxConnections: 1"),
    _in("circuit-breaking", "", "", "get", "pods", "-lapp=fortio", "-o",
        "jsonpath={.items[0].metadata.name}", shows="fortio-"),
    _in("circuit-breaking", "", "", "exec", "{fortio}", "-c", "fortio", "/usr/bin/fortio", "--",
        "load", "-c", "3", "-qps", "0", "-n", "30", "-loglevel", "Warning",
        # kubectl 1.37 refuses "exec [POD] [COMMAND]"; 1.36 drops /usr/bin/fortio and runs
        # "load ...", which the embedded cluster answers with its list of modelled commands
        "http://httpbin:8000/get", expect=USAGE),
    _in("circuit-breaking", "", "", "delete", "destinationrule", "httpbin", shows="deleted"),
    _in("mirroring", "", "", "get", "pod", "-l", "app=sleep", "-o",
        "jsonpath={.items..metadata.name}", shows="sleep-"),
    _in("mirroring", "", "", "logs", "{httpbin}", "-c", "httpbin"),
    _in("egress-control", "", "", "get", "configmap", "istio", "-n", "istio-system", "-o",
        "yaml", shows="accessLogFile"),
    _in("egress-control", "", "", "logs", "{sleep}", "-c", "istio-proxy"),
    _in("access-log", "", "", "logs", "-l", "app=sleep", "-c", "istio-proxy"),
    _in("ingress-control", "", "", "get", "svc", "istio-ingressgateway", "-n", "istio-system",
        shows="LoadBalancer"),
    _in("ingress-control", "", "", "-n", "istio-system", "get", "service",
        "istio-ingressgateway", "-o", "jsonpath={.spec.ports[?(@.name==\"http2\")].nodePort}",
        shows="30"),
    _in("ingress-control", "", "", "get", "po", "-l", "istio=ingressgateway", "-n",
        "istio-system", "-o", "jsonpath={.items[0].status.hostIP}", shows="127.0.0.1"),
    _in("ingress-control", "", "", "get", "svc", "-n", "istio-system",
        shows="istio-ingressgateway"),
    _in("ingress-control", "", "", "get", "gateway", "--all-namespaces"),
    _in("authn-policy", "", "", "get", "peerauthentication", "--all-namespaces"),
    _in("authn-policy", "", "", "get", "destinationrules.networking.istio.io",
        "--all-namespaces", "-o", "yaml", shows="items"),
    _in("authn-policy", "", "", "create", "ns", "qux", shows="namespace/qux created"),
]
HOST_CURLS = 13  # authn-policy 10 (a loop of 10 counts once) + ingress-control 2 + metrics 1
DR = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin
  trafficPolicy: {connectionPool: {tcp: {maxConnections: 1}}}
"""


class Cluster:
    def __init__(self, kit: Kit, kubectl: Kubectl) -> None:
        self.kit, self.kubectl = kit, kubectl
        self.pods: dict[str, str] = {}
        for ns, sidecar in (("default", True), ("foo", True), ("bar", True),
                            ("legacy", False)):
            kit.namespace(ns)
            self.pods[f"{ns}/sleep"] = kit.sleep(ns, sidecar=sidecar)["metadata"]["name"]
            self.pods[f"{ns}/httpbin"] = kit.httpbin(ns, sidecar=sidecar)["metadata"]["name"]
        fortio = kit.pod("fortio-deploy-6d5c7b8f9-k2x4q", "default",
                         "fortio/fortio:latest_release", {"app": "fortio"}, ports=[8080])
        self.pods["default/fortio"] = fortio["metadata"]["name"]
        pods = kit.bookinfo()
        self.pods["default/ratings"] = pods["ratings-v1"]["metadata"]["name"]
        kit.apply(DR)

    def run(self, inv: Invocation) -> tuple[int, str, str]:
        if inv.pod:
            ns, _ = inv.pod.split("/")
            args = ["exec", self.pods[inv.pod], "-n", ns, "-c", inv.container, "--", *inv.argv]
        else:
            names = {k.split("/")[1]: v for k, v in self.pods.items() if k.startswith("default/")}
            args = [a.format(**names) if a.startswith("{") and a.endswith("}") else a
                    for a in inv.argv]
        got = self.kubectl.run(*args, check=False)
        return got.returncode, got.stdout, got.stderr


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not KUBECTL.exists():
        pytest.fail(f"the pinned kubectl is not installed at {KUBECTL}", pytrace=False)
    kit = Kit(seed=13)
    server = ApiServer(kit.rt, exec_handler=run_in_container, reads_stdin=reads_stdin)
    url = server.start()
    try:
        yield Cluster(kit, Kubectl(url, Path(tmp_path_factory.mktemp("istio-io"))))
    finally:
        server.stop()


def _id(inv: Invocation) -> str:
    return f"{inv.task}:{' '.join(inv.argv)[:60]}"


@pytest.mark.parametrize("inv", IN_POD + KUBECTL_TABLE, ids=_id)
def test_istio_io_invocation(cluster: Cluster, inv: Invocation) -> None:
    code, out, err = cluster.run(inv)
    shown = f"exit {code}\nstdout: {out[-600:]}\nstderr: {err[-600:]}"
    if inv.expect == OK:
        assert code == 0, f"{' '.join(inv.argv)} is modelled but failed:\n{shown}"
        assert inv.shows in out + err, shown
    else:
        assert code != 0, f"{' '.join(inv.argv)} should be a usage error:\n{shown}"
        assert "Traceback" not in err and err.strip(), shown
        clear = ("not model" in err or "embedded cluster" in err or
                 "not supported" in err)
        assert clear, f"the error does not say what is not modelled:\n{shown}"
        assert inv.shows in err, shown


def test_the_counts_in_the_table() -> None:
    table = IN_POD + KUBECTL_TABLE
    counts = {kind: sum(1 for inv in table if inv.expect == kind) for kind in (OK, USAGE)}
    assert counts == {OK: 30, USAGE: 6}, counts
    assert len(IN_POD) == 19 and len(KUBECTL_TABLE) == 17 and HOST_CURLS == 13
