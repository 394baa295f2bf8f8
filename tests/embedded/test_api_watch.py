"""Watch streams: initial state, replay from a resourceVersion, 410, selectors, WatchList."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from api_testkit import Api, api_fixture  # noqa: F401
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

WATCH_TIMEOUT = 10.0


def _cm(name: str, labels: dict | None = None) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}}, "data": {"k": "v"}}


def _events(api: Api, query: str, count: int, path: str = "/api/v1/namespaces/default/configmaps"
            ) -> list[dict]:
    """Read ``count`` watch events from a raw stream (fails after WATCH_TIMEOUT)."""
    out: list[dict] = []
    with httpx.stream("GET", f"{api.url}{path}?watch=true&{query}", timeout=WATCH_TIMEOUT) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            out.append(json.loads(line))
            if len(out) == count:
                break
    return out


def test_watch_without_rv_sends_current_state_then_live_events(api: Api) -> None:
    core = client.CoreV1Api(api.client())
    core.create_namespaced_config_map("default", _cm("a"))
    w = watch.Watch()
    seen = []
    for ev in w.stream(core.list_namespaced_config_map, "default", timeout_seconds=5):
        seen.append((ev["type"], ev["object"].metadata.name))
        if len(seen) == 1:
            core.create_namespaced_config_map("default", _cm("b"))
            core.delete_namespaced_config_map("a", "default")
        if len(seen) == 3:
            w.stop()
    assert seen == [("ADDED", "a"), ("ADDED", "b"), ("DELETED", "a")]


def test_watch_replays_from_resource_version(api: Api) -> None:
    core = client.CoreV1Api(api.client())
    rv = core.create_namespaced_config_map("default", _cm("a")).metadata.resource_version
    core.patch_namespaced_config_map("a", "default", {"data": {"k": "2"}})
    core.create_namespaced_config_map("default", _cm("b"))
    seen = [(e["type"], e["object"].metadata.name) for e in watch.Watch().stream(
        core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=1)]
    assert seen == [("MODIFIED", "a"), ("ADDED", "b")]


def test_too_old_resource_version_is_a_410_error_event(api: Api) -> None:
    core = client.CoreV1Api(api.client())
    api.runtime.store._events.clear()  # an event log that no longer reaches back
    core.create_namespaced_config_map("default", _cm("a"))
    core.create_namespaced_config_map("default", _cm("b"))
    (event,) = _events(api, "resourceVersion=1", 1)
    assert event["type"] == "ERROR"
    assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")
    with pytest.raises(ApiException) as err:
        list(watch.Watch().stream(core.list_namespaced_config_map, "default", resource_version="1",
                                  timeout_seconds=2))
    assert err.value.status == 410


def test_timeout_seconds_ends_the_stream(api: Api) -> None:
    start = time.monotonic()
    with httpx.stream("GET", f"{api.url}/api/v1/namespaces/default/configmaps?watch=1&"
                             "timeoutSeconds=1", timeout=WATCH_TIMEOUT) as r:
        lines = list(r.iter_lines())
    assert lines == [] and time.monotonic() - start < 5


def test_label_selector_turns_label_changes_into_added_and_deleted(api: Api) -> None:
    core = client.CoreV1Api(api.client())
    rv = core.create_namespaced_config_map("default", _cm("a")).metadata.resource_version
    core.patch_namespaced_config_map("a", "default", {"metadata": {"labels": {"sel": "yes"}}})
    core.patch_namespaced_config_map("a", "default", {"data": {"k": "2"}})
    core.patch_namespaced_config_map("a", "default", {"metadata": {"labels": {"sel": "no"}}})
    core.create_namespaced_config_map("default", _cm("other"))
    events = _events(api, f"resourceVersion={rv}&labelSelector=sel%3Dyes&timeoutSeconds=1", 3)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert {e["object"]["metadata"]["name"] for e in events} == {"a"}


def test_field_selector_on_namespace_scope(api: Api) -> None:
    core = client.CoreV1Api(api.client())
    core.create_namespace({"metadata": {"name": "other"}})
    core.create_namespaced_config_map("other", _cm("x"))
    core.create_namespaced_config_map("default", _cm("y"))
    core.create_namespaced_config_map("default", _cm("z"))
    events = _events(api, "fieldSelector=metadata.name%3Dz&timeoutSeconds=1", 1)
    assert [e["object"]["metadata"]["name"] for e in events] == ["z"]
    every = _events(api, "timeoutSeconds=1", 3, path="/api/v1/configmaps")
    assert sorted(e["object"]["metadata"]["name"] for e in every) == ["x", "y", "z"]


def test_send_initial_events_ends_with_annotated_bookmark(api: Api) -> None:
    core = client.CoreV1Api(api.client())
    core.create_namespaced_config_map("default", _cm("a"))
    last = core.create_namespaced_config_map("default", _cm("b")).metadata.resource_version
    events = _events(api, "sendInitialEvents=true&allowWatchBookmarks=true&"
                          "resourceVersionMatch=NotOlderThan", 3)
    assert [e["type"] for e in events] == ["ADDED", "ADDED", "BOOKMARK"]
    meta = events[2]["object"]["metadata"]
    assert meta["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(meta["resourceVersion"]) >= int(last)


def test_stop_ends_open_watches(api: Api) -> None:
    with httpx.stream("GET", f"{api.url}/api/v1/namespaces/default/configmaps?watch=true",
                      timeout=WATCH_TIMEOUT) as r:
        start = time.monotonic()
        api.server.stop()
        assert list(r.iter_lines()) == []
    assert time.monotonic() - start < 5


def test_periodic_bookmarks_carry_the_last_resource_version(api: Api,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    from pytest_istiolab.embedded.api import watch as watch_module

    monkeypatch.setattr(watch_module, "BOOKMARK_SECONDS", 0.1)
    rv = client.CoreV1Api(api.client()).create_namespaced_config_map(
        "default", _cm("a")).metadata.resource_version
    (added, bookmark) = _events(api, "allowWatchBookmarks=true&timeoutSeconds=5", 2)
    assert added["type"] == "ADDED"
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["resourceVersion"] == rv
    assert "annotations" not in bookmark["object"]["metadata"]


def test_watch_as_table_sends_one_row_tables(api: Api) -> None:
    api.add_pod("p")
    headers = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
    with httpx.stream("GET", f"{api.url}/api/v1/namespaces/default/pods?watch=1&"
                             "timeoutSeconds=1", headers=headers, timeout=WATCH_TIMEOUT) as r:
        (event,) = [json.loads(line) for line in r.iter_lines()]
    assert event["type"] == "ADDED" and event["object"]["kind"] == "Table"
    assert event["object"]["rows"][0]["cells"][:3] == ["p", "1/1", "Running"]
