"""The real kubectl (1.37, websocket exec) against the embedded API server.

Each test has its own HOME, cache dir and kubeconfig; every kubectl call has a timeout.
"""

from __future__ import annotations

import datetime
import json
import threading
from pathlib import Path

from api_testkit import Api, Kubectl, api_fixture, crd, kubectl_fixture  # noqa: F401
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1
        env:
        - {name: A, value: "1"}
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: gw
spec:
  type: LoadBalancer
  selector: {app: gw}
  clusterIP: 10.96.0.20
  ports:
  - {name: status-port, port: 15021, nodePort: 30275}
  - {name: http2, port: 80, nodePort: 31216}
"""


def _header_and_rows(text: str) -> tuple[list[str], list[list[str]]]:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[0].split(), [ln.split() for ln in lines[1:]]


def test_get_pods_prints_real_columns(api: Api, kubectl: Kubectl) -> None:
    api.add_pod("web-1", containers=("web", "istio-proxy"))
    api.add_pod("web-2", phase="Pending")
    header, rows = _header_and_rows(kubectl.run("get", "pods").stdout)
    assert header == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert rows[0][:4] == ["web-1", "2/2", "Running", "0"]
    assert rows[1][:3] == ["web-2", "0/1", "ContainerCreating"]
    wide = kubectl.run("get", "pods", "-o", "wide").stdout
    assert "IP" in wide.split() and "embedded-control-plane" in wide


def test_get_services_prints_type_ports_and_pending_external_ip(api: Api,
                                                                kubectl: Kubectl) -> None:
    kubectl.run("apply", "-f", "-", stdin=SERVICE)
    header, rows = _header_and_rows(kubectl.run("get", "svc").stdout)
    assert header == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert rows[0][:5] == ["gw", "LoadBalancer", "10.96.0.20", "<pending>",
                           "15021:30275/TCP,80:31216/TCP"]


def test_get_json_and_jsonpath(api: Api, kubectl: Kubectl) -> None:
    api.add_pod("p", labels={"app": "sleep"})
    body = kubectl.json("get", "pods", "-l", "app=sleep")
    assert [i["metadata"]["name"] for i in body["items"]] == ["p"]
    name = kubectl.run("get", "pod", "-l", "app=sleep", "-o",
                       "jsonpath={.items[0].metadata.name}").stdout
    assert name == "p"
    assert kubectl.run("get", "pod", "nope", check=False).returncode == 1


def test_client_side_apply_then_reapply_changes_the_image(api: Api, kubectl: Kubectl) -> None:
    assert "deployment.apps/web created" in kubectl.run("apply", "-f", "-",
                                                        stdin=DEPLOYMENT).stdout
    changed = DEPLOYMENT.replace("nginx:1", "nginx:2")
    assert "configured" in kubectl.run("apply", "-f", "-", stdin=changed).stdout
    deploy = kubectl.json("get", "deploy", "web")
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert (container["image"], container["env"]) == ("nginx:2", [{"name": "A", "value": "1"}])
    assert "unchanged" in kubectl.run("apply", "-f", "-", "--validate=false",
                                      stdin=changed).stdout


def test_server_side_apply(api: Api, kubectl: Kubectl) -> None:
    out = kubectl.run("apply", "--server-side", "-f", "-", stdin=DEPLOYMENT).stdout
    assert "serverside-applied" in out
    kubectl.run("apply", "--server-side", "-f", "-",
                stdin=DEPLOYMENT.replace("        env:\n        - {name: A, value: \"1\"}\n", ""))
    container = kubectl.json("get", "deploy", "web")["spec"]["template"]["spec"]["containers"][0]
    assert "env" not in container


def test_label_and_delete(api: Api, kubectl: Kubectl) -> None:
    api.add_pod("p")
    kubectl.run("label", "pod", "p", "tier=web")
    assert kubectl.run("get", "pods", "-l", "tier=web", "-o", "name").stdout.strip() == "pod/p"
    kubectl.run("label", "namespace", "default", "istio-injection=enabled")
    assert api.store.get(api.rt("", "namespaces"), None, "default")["metadata"]["labels"][
        "istio-injection"] == "enabled"
    assert 'pod "p" deleted' in kubectl.run("delete", "pod", "p").stdout
    assert "No resources found" in kubectl.run("get", "pods").stderr


def test_logs_with_default_container_and_tail(api: Api, kubectl: Kubectl) -> None:
    api.add_pod("p", containers=("app", "istio-proxy"),
                metadata={"annotations": {"kubectl.kubernetes.io/default-container": "app"}})
    api.runtime.logs.append("default", "p", "app", "a\nb\nc", api.runtime.clock.now())
    assert kubectl.run("logs", "p").stdout == "a\nb\nc\n"
    assert kubectl.run("logs", "p", "-c", "app", "--tail=1").stdout == "c\n"


def test_exec_propagates_output_and_exit_codes(api: Api, kubectl: Kubectl) -> None:
    api.add_pod("p")
    assert kubectl.run("exec", "p", "--", "echo", "hi").stdout == "hi\n"
    failed = kubectl.run("exec", "p", "--", "exit", "7", check=False)
    assert failed.returncode == 7
    assert "command terminated with exit code 7" in failed.stderr
    assert kubectl.run("exec", "-i", "p", "--", "cat", stdin="from stdin\n").stdout == \
        "from stdin\n"
    api.add_pod("waiting", phase="Pending")
    pending = kubectl.run("exec", "waiting", "--", "echo", check=False)
    assert pending.returncode == 1
    assert 'error: unable to upgrade connection: container not found ("app")' in pending.stderr


def test_wait_for_ready_condition_sees_a_later_change(api: Api, kubectl: Kubectl) -> None:
    api.add_pod("p", phase="Pending")
    pods = api.rt("", "pods")

    def become_ready() -> None:
        api.store.mutate(pods, "default", "p", lambda pod: pod["status"].update(
            phase="Running", conditions=[{"type": "Ready", "status": "True"}]))

    timer = threading.Timer(0.5, become_ready)
    timer.start()
    try:
        out = kubectl.run("wait", "--for=condition=Ready", "pod/p", "--timeout=10s")
    finally:
        timer.cancel()
    assert "pod/p condition met" in out.stdout


def test_rollout_status_of_a_finished_deployment(api: Api, kubectl: Kubectl) -> None:
    kubectl.run("apply", "-f", "-", stdin=DEPLOYMENT)
    api.store.mutate(api.rt("apps", "deployments"), "default", "web", lambda d: d.update(status={
        "observedGeneration": d["metadata"]["generation"], "replicas": 2, "updatedReplicas": 2,
        "readyReplicas": 2, "availableReplicas": 2}))
    out = kubectl.run("rollout", "status", "deployment/web", "--timeout=10s").stdout
    assert 'deployment "web" successfully rolled out' in out
    header, rows = _header_and_rows(kubectl.run("get", "deploy").stdout)
    assert header == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert rows[0][:4] == ["web", "2/2", "2", "2"]


def test_crds_columns_short_names_and_api_resources(api: Api, kubectl: Kubectl) -> None:
    columns = [{"name": "Gateways", "type": "string", "jsonPath": ".spec.gateways"},
               {"name": "Hosts", "type": "string", "jsonPath": ".spec.hosts"},
               {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
    definition = crd("networking.istio.io", "virtualservices", "VirtualService", ("v1",),
                     ("vs",), columns)
    kubectl.run("apply", "-f", "-", stdin=json.dumps(definition))
    header, rows = _header_and_rows(kubectl.run("get", "crd").stdout)
    assert header == ["NAME", "CREATED", "AT"] and rows[0][0] == \
        "virtualservices.networking.istio.io"
    kubectl.run("apply", "-f", "-", stdin=json.dumps({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "bookinfo"},
        "spec": {"gateways": ["bookinfo-gateway"], "hosts": ["*"]}}))
    header, rows = _header_and_rows(kubectl.run("get", "vs").stdout)
    assert header == ["NAME", "GATEWAYS", "HOSTS", "AGE"]
    assert rows[0][:3] == ["bookinfo", '["bookinfo-gateway"]', '["*"]']
    resources = kubectl.run("api-resources").stdout
    line = next(ln for ln in resources.splitlines() if ln.startswith("virtualservices"))
    assert line.split() == ["virtualservices", "vs", "networking.istio.io/v1", "true",
                            "VirtualService"]


def _self_signed(where: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "httpbin.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path, key_path = where / "tls.crt", where / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_typed_create_commands_send_protobuf_and_work(api: Api, kubectl: Kubectl,
                                                      tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    kubectl.run("create", "ns", "foo")
    kubectl.run("create", "-n", "foo", "secret", "tls", "cred", f"--cert={cert}", f"--key={key}")
    kubectl.run("create", "-n", "foo", "secret", "generic", "gen", "--from-literal=a=b")
    kubectl.run("create", "-n", "foo", "configmap", "cfg", "--from-literal=k=v")
    kubectl.run("create", "-n", "foo", "deployment", "web", "--image=nginx", "--port=80",
                "--replicas=2")
    kubectl.run("create", "-n", "foo", "service", "nodeport", "web", "--tcp=80:8080",
                "--node-port=30080")
    tls = kubectl.json("get", "-n", "foo", "secret", "cred")
    assert tls["type"] == "kubernetes.io/tls" and sorted(tls["data"]) == ["tls.crt", "tls.key"]
    assert kubectl.json("get", "-n", "foo", "secret", "gen")["data"] == {"a": "Yg=="}
    assert kubectl.json("get", "-n", "foo", "cm", "cfg")["data"] == {"k": "v"}
    deploy = kubectl.json("get", "-n", "foo", "deploy", "web")
    assert deploy["spec"]["replicas"] == 2
    assert deploy["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 80}]
    port = kubectl.json("get", "-n", "foo", "svc", "web")["spec"]["ports"][0]
    assert (port["port"], port["targetPort"], port["nodePort"]) == (80, 8080, 30080)
    job = kubectl.run("create", "job", "j", "--image=busybox", check=False)
    assert job.returncode == 1 and "batch/v1 Job are not modelled" in job.stderr
