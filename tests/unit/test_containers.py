"""Finding the sidecar in ``containers`` or as a native sidecar (Istio 1.27), and READY as
kubectl counts it (``pytest_istiolab.kube.containers``)."""

from __future__ import annotations

from pytest_istiolab.kube.containers import (
    app_containers,
    has_sidecar,
    init_containers,
    is_native_sidecar,
    ready_column,
    sidecar,
)

RUNNING = {"running": {"startedAt": "2026-12-02T08:00:00Z"}}
DONE = {"terminated": {"exitCode": 0, "reason": "Completed"}}


def classic(app_ready: bool = True) -> dict:
    return {"spec": {"initContainers": [{"name": "istio-init"}],
                     "containers": [{"name": "app"}, {"name": "istio-proxy"}]},
            "status": {"initContainerStatuses": [{"name": "istio-init", "ready": True,
                                                  "state": DONE}],
                       "containerStatuses": [
                           {"name": "app", "ready": app_ready, "state": RUNNING},
                           {"name": "istio-proxy", "ready": True, "state": RUNNING}]}}


def native(sidecar_ready: bool = True, started: bool = True) -> dict:
    return {"spec": {"initContainers": [{"name": "istio-init"},
                                        {"name": "istio-proxy", "restartPolicy": "Always"}],
                     "containers": [{"name": "app"}]},
            "status": {"initContainerStatuses": [
                {"name": "istio-init", "ready": True, "state": DONE},
                {"name": "istio-proxy", "ready": sidecar_ready, "started": started,
                 "state": RUNNING}],
                "containerStatuses": [{"name": "app", "ready": True, "state": RUNNING}]}}


def test_the_sidecar_is_found_in_containers_or_as_a_native_sidecar() -> None:
    for pod in (classic(), native()):
        assert has_sidecar(pod) and sidecar(pod)["name"] == "istio-proxy"
        assert [c["name"] for c in app_containers(pod)] == ["app"]
        assert init_containers(pod) == ["istio-init"]
    assert is_native_sidecar(native()) and not is_native_sidecar(classic())


def test_an_init_container_named_istio_proxy_without_restart_always_is_no_sidecar() -> None:
    pod = native()
    del pod["spec"]["initContainers"][1]["restartPolicy"]
    assert not has_sidecar(pod)


def test_ready_counts_native_sidecars_as_kubectl_does() -> None:
    assert ready_column(classic()) == ready_column(native()) == "2/2"
    assert ready_column(classic(app_ready=False)) == "1/2"
    assert ready_column(native(sidecar_ready=False)) == "1/2"
    assert ready_column(native(started=False)) == "1/2"
