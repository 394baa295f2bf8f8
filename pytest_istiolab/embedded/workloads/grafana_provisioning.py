"""What the embedded Grafana provisions: datasources and dashboards from its mounted files.

Grafana reads ``$GF_PATHS_PROVISIONING/datasources/*.yaml`` and
``$GF_PATHS_PROVISIONING/dashboards/*.yaml`` (providers of ``type: file`` whose
``options.path`` names a directory of dashboard JSON files). The addon mounts those files from
ConfigMaps: this module resolves a path through the container's ``volumeMounts`` (with or
without ``subPath``) to the ConfigMap key behind it, the way the kubelet's projection does,
and reads the ConfigMap from the store at the time of the request (a real Grafana reads them
at start-up and polls the dashboard directories every 10 s).

Identifiers: a dashboard keeps the ``uid`` its JSON sets; one without gets a uid generated at
provisioning, as Grafana does (random there; here derived from the pod's uid and the file, so
stable for the life of the pod and different for another install). Datasources without a
``uid`` and the provider folders get generated uids the same way. Numeric ids are assigned in
provisioning order. Not modelled: dashboards saved through the API, ``foldersFromFilesStructure``,
``allowUiUpdates``, datasource ``deleteDatasources``, secure JSON data.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

Obj = dict[str, Any]
DEFAULT_PROVISIONING = "/etc/grafana/provisioning"


@dataclass
class Dashboard:
    id: int
    uid: str
    title: str
    tags: list[str]
    folder: Folder | None
    file: str
    model: Obj


@dataclass
class Folder:
    id: int
    uid: str
    title: str


@dataclass
class Datasource:
    id: int
    uid: str
    name: str
    type: str
    url: str
    access: str
    is_default: bool
    json_data: Obj
    editable: bool


@dataclass
class Provisioned:
    datasources: list[Datasource] = field(default_factory=list)
    folders: list[Folder] = field(default_factory=list)
    dashboards: list[Dashboard] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    last_id: int = 0  # folders and dashboards share one id sequence, as in Grafana's table

    def next_id(self) -> int:
        self.last_id += 1
        return self.last_id


def slugify(title: str) -> str:
    """Grafana's slug of a title: lower case, runs of other characters become one ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _short_uid(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:14]


class Files:
    """The files a container sees under its ConfigMap volume mounts."""

    def __init__(self, pod: Obj, container: Obj, configmaps: dict[str, Obj]) -> None:
        volumes = {v.get("name"): (v.get("configMap") or {}).get("name")
                   for v in (pod.get("spec") or {}).get("volumes") or []}
        self.mounts = [(str(m.get("mountPath", "")).rstrip("/"), m.get("subPath"),
                        volumes.get(m.get("name"))) for m in container.get("volumeMounts") or []]
        self.configmaps = configmaps

    def _data(self, configmap: str | None) -> dict[str, str]:
        cm = self.configmaps.get(configmap or "") or {}
        return {str(k): str(v) for k, v in (cm.get("data") or {}).items()}

    def listdir(self, directory: str) -> dict[str, str]:
        """{file name: content} of the files directly in ``directory``."""
        directory = directory.rstrip("/")
        found: dict[str, str] = {}
        for path, sub, configmap in self.mounts:
            data = self._data(configmap)
            if sub and posixpath.dirname(path) == directory and sub in data:
                found[posixpath.basename(path)] = data[sub]
            elif not sub and path == directory:
                found.update(data)
        return found


def provision(pod: Obj, container: Obj, configmaps: dict[str, Obj],
              provisioning: str | None = None) -> Provisioned:
    files = Files(pod, container, configmaps)
    root = (provisioning or DEFAULT_PROVISIONING).rstrip("/")
    pod_uid = str(pod["metadata"].get("uid") or pod["metadata"]["name"])
    out = Provisioned()
    for name, text in sorted(files.listdir(f"{root}/datasources").items()):
        for ds in _documents(text, name, out).get("datasources") or []:
            _add_datasource(out, ds, pod_uid)
    for name, text in sorted(files.listdir(f"{root}/dashboards").items()):
        for provider in _documents(text, name, out).get("providers") or []:
            _add_provider(out, provider, files, pod_uid)
    return out


def _documents(text: str, name: str, out: Provisioned) -> Obj:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        out.errors.append(f"{name}: {exc}")
        return {}
    return doc if isinstance(doc, dict) else {}


def _add_datasource(out: Provisioned, ds: Obj, pod_uid: str) -> None:
    name = str(ds.get("name") or "")
    out.datasources.append(Datasource(
        id=len(out.datasources) + 1, uid=str(ds.get("uid") or _short_uid(pod_uid, "ds", name)),
        name=name, type=str(ds.get("type") or ""), url=str(ds.get("url") or ""),
        access=str(ds.get("access") or "proxy"), is_default=bool(ds.get("isDefault")),
        json_data=dict(ds.get("jsonData") or {}), editable=bool(ds.get("editable"))))


def _folder(out: Provisioned, title: str, pod_uid: str) -> Folder | None:
    if not title:
        return None
    for folder in out.folders:
        if folder.title == title:
            return folder
    folder = Folder(out.next_id(), _short_uid(pod_uid, "folder", title), title)
    out.folders.append(folder)
    return folder


def _add_provider(out: Provisioned, provider: Obj, files: Files, pod_uid: str) -> None:
    if provider.get("type", "file") != "file":
        out.errors.append(f"provider {provider.get('name')}: type {provider.get('type')} is "
                          "not modelled")
        return
    path = str((provider.get("options") or {}).get("path") or "")
    folder = _folder(out, str(provider.get("folder") or ""), pod_uid)
    for name, text in sorted(files.listdir(path).items()):
        if not name.endswith(".json"):
            continue
        try:
            model = json.loads(text)
        except ValueError as exc:
            out.errors.append(f"{path}/{name}: {exc}")
            continue
        uid = str(model.get("uid") or _short_uid(pod_uid, "dash", path, name))
        if any(d.uid == uid for d in out.dashboards):
            out.errors.append(f"{path}/{name}: dashboard uid {uid} is provisioned twice")
            continue
        out.dashboards.append(Dashboard(out.next_id(), uid, str(model.get("title") or ""),
                                        list(model.get("tags") or []), folder, name, model))
