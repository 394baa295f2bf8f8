"""What a mesh engineer needs from a failed lab test, collected and bounded in size.

Parts, in this order: the manifests the test applied (as rendered), the commands it ran with
their output (API writes, execs, istioctl, requests to the ingress gateway), the pods of the
lab namespace with the tail of each container's log, the namespace's latest events, and, on
clusters with a real istioctl (any provider but the embedded one, whose istioctl does not model
``proxy-config``), ``istioctl proxy-config routes|clusters`` of the client pod and ``istioctl
analyze -n <namespace>``.

Size: each part is clipped to :data:`PART_LIMIT` characters (manifests keep their start, command
output its end, the pods-and-logs part both: the pods and their status first, the last logs),
and the whole to :data:`DIAGNOSTICS_LIMIT`, shared fairly between the parts present.
Collecting never raises: a part that cannot be read says why. A lab namespace's pods, logs and
events are attached to the first failure of a module only.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from pytest_istiolab.cluster import ClusterSession
from pytest_istiolab.kube.containers import has_sidecar, ready_column, running_containers
from pytest_istiolab.security import redact_secret

DIAGNOSTICS_LIMIT = 20_000   # characters per failed test, all parts together
PART_LIMIT = 6_000           # characters of one part
LOG_TAIL_LINES = 20
EVENTS_SHOWN = 30
CLIENT_APPS = ("sleep", "productpage", "ratings")  # the labs' in-mesh clients, in this order


@dataclass(frozen=True)
class Part:
    """One titled block of the report; ``keep`` says which end survives clipping."""

    title: str
    text: str
    keep: str = "tail"  # "head" | "tail" | "both" (the start and the end, the middle cut)


def clip(text: str, limit: int, keep: str = "tail") -> str:
    """``text`` cut to at most ``limit`` characters, saying how much was dropped."""
    if len(text) <= limit:
        return text
    note = f"... ({len(text) - limit} characters dropped)"
    room = limit - len(note) - 1
    if room <= 0:
        return note
    if keep == "both":  # two newlines around the note
        head = (room - 1) // 2
        return text[:head] + "\n" + note + "\n" + text[len(text) - (room - 1 - head):]
    return (text[:room] + "\n" + note) if keep == "head" else (note + "\n" + text[-room:])


def bound(parts: list[Part], limit: int = DIAGNOSTICS_LIMIT,
          part_limit: int = PART_LIMIT) -> list[Part]:
    """Clip each part, then share ``limit`` between them (a short part leaves room to others)."""
    out: list[Part] = []
    budget = limit
    for index, part in enumerate(parts):
        share = budget // (len(parts) - index) - len(part.title) - 8
        text = clip(part.text, max(0, min(part_limit, share)), part.keep)
        out.append(Part(part.title, text, part.keep))
        budget -= len(text) + len(part.title) + 8
    return out


def render_text(parts: list[Part]) -> str:
    return "\n".join(f"--- {p.title}\n{p.text}" for p in parts)


def render_html(parts: list[Part]) -> str:
    """The parts as collapsible blocks for pytest-html (open by default)."""
    blocks = "".join(f"<details open><summary>{html.escape(p.title)}</summary>"
                     f"<pre>{html.escape(p.text)}</pre></details>" for p in parts)
    return f'<div class="istiolab-diagnostics"><h4>istiolab diagnostics</h4>{blocks}</div>'


def collect(session: ClusterSession | None, sources: list[tuple[str, str]],
            commands: list[tuple[str, str]], namespace: str | None,
            dumped_by: str | None = None) -> list[Part]:
    """Every part for one failed test (see the module docstring). ``dumped_by``: an earlier
    failure of the module already carries the namespace's pods, logs and events (named, not
    repeated)."""
    parts = [Part(f"applied {manifest}", redact_secrets(text), "head")
             for manifest, text in sources]
    if commands:
        text = "\n".join(f"{description}\n{_indent(output)}" for description, output in commands)
        parts.append(Part(f"commands run by the test ({len(commands)})", text))
    if session is not None and namespace and dumped_by:
        parts.append(Part(f"pods, logs and events in {namespace}",
                          f"shown once per module: see the diagnostics of {dumped_by}"))
    elif session is not None and namespace:
        parts.append(_safely(f"pods and logs in {namespace}",
                             lambda: _pods_and_logs(session, namespace), keep="both"))
        parts.append(_safely(f"events in {namespace}", lambda: _events(session, namespace)))
        if session.handle.provider != "embedded":
            parts += _istioctl_parts(session, namespace)
    return parts


def redact_secrets(text: str) -> str:
    """Rendered YAML with every Secret's data replaced by its size (no key material in reports)."""
    if "Secret" not in text:
        return text
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError:
        return "(a manifest with a Secret that is not valid YAML: not shown)"
    if not any(isinstance(d, dict) and d.get("kind") == "Secret" for d in docs):
        return text
    return yaml.safe_dump_all([redact_secret(d) if isinstance(d, dict) else d for d in docs],
                              sort_keys=False)


def _indent(output: str) -> str:
    return "\n".join(f"    {line}" for line in output.rstrip().splitlines())


def _safely(title: str, read: Callable[[], str], keep: str = "tail") -> Part:
    try:
        return Part(title, read(), keep)
    except Exception as exc:  # noqa: BLE001 - diagnostics must never hide the real failure
        return Part(title, f"(could not be read: {type(exc).__name__}: {exc})")


def _pods_and_logs(session: ClusterSession, namespace: str) -> str:
    kube, lines = session.kube, []
    for pod in kube.pods(namespace):
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        lines.append(f"pod {name}: {status.get('phase')}, {ready_column(pod)} ready")
        for container in running_containers(pod):
            tail = _log_tail(session, namespace, name, container["name"])
            if tail.strip():
                lines.append(f"  logs {container['name']} (last {LOG_TAIL_LINES} lines):")
                lines += [f"    {line}" for line in tail.rstrip().splitlines()]
    return "\n".join(lines) or "(no pods)"


def _log_tail(session: ClusterSession, namespace: str, pod: str, container: str) -> str:
    try:
        return session.kube.logs(namespace, pod, container, tail_lines=LOG_TAIL_LINES)
    except Exception as exc:  # noqa: BLE001
        return f"(no logs: {exc})"


def _events(session: ClusterSession, namespace: str) -> str:
    """The latest :data:`EVENTS_SHOWN` events, Warnings first (they rarely are the latest)."""
    events = session.kube.events(namespace)
    warnings = [e for e in events if e.get("type") == "Warning"][-EVENTS_SHOWN:]
    normal = [e for e in events if e.get("type") != "Warning"]
    lines = []
    for event in warnings + normal[len(normal) - (EVENTS_SHOWN - len(warnings)):]:
        obj = event.get("involvedObject") or {}
        lines.append(f"{event.get('type')} {event.get('reason')} {obj.get('kind')}/"
                     f"{obj.get('name')}: {event.get('message')}")
    return "\n".join(lines) or "(no events)"


def _has_sidecar(pod: dict[str, Any]) -> bool:
    """``istio-proxy`` in ``containers``, or a native sidecar (a restartable init container:
    Istio 1.27 on Kubernetes >= 1.33)."""
    return has_sidecar(pod)


def client_pod(pods: list[dict[str, Any]]) -> str | None:
    """The pod whose proxy view explains a failure: a lab client (sleep, productpage,
    ratings), else any running pod with a sidecar."""
    running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"
               and _has_sidecar(p)]
    for app in CLIENT_APPS:
        for pod in running:
            if ((pod["metadata"].get("labels") or {}).get("app")) == app:
                return str(pod["metadata"]["name"])
    return str(running[0]["metadata"]["name"]) if running else None


def _istioctl_parts(session: ClusterSession, namespace: str) -> list[Part]:
    try:
        pod = client_pod(session.kube.pods(namespace))
        ctl = session.istioctl
    except Exception as exc:  # noqa: BLE001
        return [Part("istioctl", f"(not run: {type(exc).__name__}: {exc})")]
    runs = [["analyze", "-n", namespace]]
    if pod:
        runs = [["proxy-config", what, f"{pod}.{namespace}"] for what in ("routes", "clusters")
                ] + runs
    parts = []
    for args in runs:
        title = "$ istioctl " + " ".join(args)

        def run(args: list[str] = args) -> str:
            result = ctl.run(args, check=False, timeout=session.timeouts.api_request * 3)
            code = f"(exit code {result.returncode})\n" if result.returncode else ""
            return code + result.stdout + result.stderr

        parts.append(_safely(title, run))
    return parts
