"""A client of Grafana's HTTP API (11.3, the 1.26 addon) and of its dashboards' panel queries.

:class:`Grafana` reads ``/api/health``, ``/api/search``, ``/api/dashboards/uid/<uid>`` and
``/api/datasources``, and sends PromQL to Prometheus through Grafana's datasource proxy
(``/api/datasources/proxy/uid/<uid>/api/v1/query`` and ``query_range``): the path a browser's
panel data takes when the datasource's access is ``proxy``.

A panel's ``expr`` has Grafana template variables in it. :class:`Board` substitutes them the
way Grafana's frontend does before it sends a query to a Prometheus datasource:

* ``$var``, ``${var}`` and ``[[var]]`` are replaced by the variable's current value. A variable
  that is ``multi`` or ``includeAll`` has its values regex-escaped (Grafana's
  ``prometheusSpecialRegexEscape``: ``.`` becomes ``\\\\.`` inside the PromQL string) and, when
  there are several, joined as ``(a|b)``; ``All`` without an ``allValue`` is every option of the
  variable. A plain variable's value is used as it is (only ``\\`` and ``'`` escaped).
* A ``query`` variable's options come from its ``query_result(<PromQL>)``: an instant query
  whose rows are written ``name{l="v",...} value timestamp`` and matched against the
  variable's ``regex`` (the first capture group is the option), duplicates dropped; a
  ``custom`` variable's options are its comma-separated ``query``.
* ``$__interval`` is the dashboard's time range (``now-30m``) over :data:`MAX_DATA_POINTS`
  points, rounded as Grafana rounds intervals, and raised to the minimum interval (the panel's
  ``interval``, else the datasource's ``timeInterval``, 15 s in the addon);
  ``$__rate_interval`` is ``max($__interval + min interval, 4 × min interval)``;
  ``$__range`` is the time range in seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pytest_istiolab.observability.http import AddonClient, AddonError
from pytest_istiolab.observability.prometheus import PrometheusError

Obj = dict[str, Any]
MAX_DATA_POINTS = 1000  # a panel about 1000 px wide; Grafana derives maxDataPoints from width
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
# Grafana's interval rounding table (kbn.roundInterval): (upper bound, rounded), seconds
_ROUNDING = [(0.015, 0.01), (0.035, 0.02), (0.075, 0.05), (0.15, 0.1), (0.35, 0.2),
             (0.75, 0.5), (1.5, 1), (3.5, 2), (7.5, 5), (12.5, 10), (17.5, 15), (25, 20),
             (45, 30), (90, 60), (450, 300), (900, 600), (1350, 900), (2700, 1800),
             (5400, 3600), (9000, 7200), (16200, 10800), (32400, 21600), (86400, 43200)]


class GrafanaError(AddonError):
    """A Grafana API error: HTTP status and Grafana's ``message``."""

    addon = "Grafana"


def parse_duration(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text.strip())
    if not match:
        raise ValueError(f"not a Grafana interval: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def round_interval(seconds: float) -> float:
    for bound, rounded in _ROUNDING:
        if seconds < bound:
            return rounded
    return 604800.0


def format_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(round(seconds * 1000))}ms"


def regex_escape(value: str) -> str:
    """Grafana's ``prometheusSpecialRegexEscape`` (a value inside a PromQL ``=~"..."``)."""
    value = value.replace("\\", "\\\\\\\\")
    return re.sub(r"[$^*{}\[\]'+?.()|]", lambda m: "\\\\" + m.group(0), value)


def regular_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def query_result_rows(result: list[Obj]) -> list[str]:
    """The text Grafana matches a ``query_result`` variable's regex against, one per row."""
    rows = []
    for row in result:
        metric = dict(row.get("metric") or {})
        name = metric.pop("__name__", "")
        labels = ",".join(f'{k}="{v}"' for k, v in metric.items())
        value = row.get("value") or [0, ""]
        rows.append(f"{name}{{{labels}}} {value[1]} {int(float(value[0]) * 1000)}")
    return rows


def options_from(rows: list[str], regex: str) -> list[str]:
    """Options of a variable: the regex's first group of each row (the row without a regex)."""
    pattern = None
    if regex:
        body = regex[1:regex.rfind("/")] if regex.startswith("/") else regex
        pattern = re.compile(body)
    out: list[str] = []
    for row in rows:
        value: str | None = row
        if pattern is not None:
            match = pattern.search(row)
            value = None if match is None else (match.group(1) if match.groups() else
                                                match.group(0))
        if value is not None and value not in out:
            out.append(value)
    return out


@dataclass
class Board:
    """One dashboard's JSON, its variables' values, and its panels' rendered queries."""

    model: Obj
    scrape_interval: float = 15.0
    values: dict[str, list[str]] = field(default_factory=dict)
    options: dict[str, list[str]] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return str(self.model.get("title"))

    def panels(self) -> list[Obj]:
        out: list[Obj] = []
        stack = list(self.model.get("panels") or [])
        while stack:
            panel = stack.pop(0)
            out.append(panel)
            stack[:0] = panel.get("panels") or []
        return out

    def panel(self, title: str) -> Obj:
        """The panel titled ``title`` that has queries (a row may share its title)."""
        found = [p for p in self.panels() if p.get("title") == title]
        for panel in sorted(found, key=lambda p: not p.get("targets")):
            return panel
        raise KeyError(f"dashboard {self.title!r} has no panel {title!r}; it has "
                       f"{sorted({str(p.get('title')) for p in self.panels()})}")

    def variables(self) -> list[Obj]:
        return list((self.model.get("templating") or {}).get("list") or [])

    def variable(self, name: str) -> Obj:
        for var in self.variables():
            if var.get("name") == name:
                return var
        raise KeyError(f"dashboard {self.title!r} has no variable ${name}")

    def select(self, name: str, *values: str) -> None:
        """Choose ``values`` for variable ``name`` (``$__all`` for All)."""
        self.values[name] = list(values)

    def current(self, name: str) -> list[str]:
        if name in self.values:
            return self.values[name]
        current = self.variable(name).get("current") or {}
        value = current.get("value")
        if value is None:
            return []
        return list(value) if isinstance(value, list) else [str(value)]

    def intervals(self, panel: Obj) -> dict[str, str]:
        minimum = parse_duration(panel["interval"]) if panel.get("interval") else \
            self.scrape_interval
        time_range = self.range_seconds()
        interval = max(round_interval(time_range / MAX_DATA_POINTS), minimum)
        rate = max(interval + minimum, 4 * minimum)
        return {"__interval": format_duration(interval),
                "__rate_interval": format_duration(rate),
                "__range": format_duration(time_range)}

    def range_seconds(self) -> float:
        start = str((self.model.get("time") or {}).get("from") or "now-6h")
        match = re.fullmatch(r"now-(\d+)([smhd])", start)
        return float(match.group(1)) * _UNITS[match.group(2)] if match else 21600.0

    def formatted(self, name: str) -> str:
        var = self.variable(name)
        values = self.current(name)
        if values == ["$__all"]:
            if var.get("allValue"):
                return str(var["allValue"])
            values = self.options.get(name, [])
        if not (var.get("multi") or var.get("includeAll")):
            return regular_escape(values[0]) if values else ""
        escaped = [regex_escape(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"

    def render(self, expr: str, panel: Obj | None = None) -> str:
        builtins = self.intervals(panel or {})
        names = {str(v.get("name")) for v in self.variables()}

        def sub(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2) or match.group(3)
            if name in builtins:
                return builtins[name]
            if name in names and name != "datasource":
                return self.formatted(name)
            return match.group(0)

        return re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", sub, expr)

    def targets(self, title: str) -> list[tuple[Obj, str]]:
        """(target, expr with the variables substituted) of every query of a panel."""
        panel = self.panel(title)
        return [(t, self.render(str(t["expr"]), panel)) for t in panel.get("targets") or []
                if t.get("expr")]


class Grafana(AddonClient):
    error = GrafanaError

    def api(self, path: str, params: Any = None) -> Any:
        """GET ``path``: the decoded JSON, or :class:`GrafanaError` with Grafana's message."""
        return self.json(path, params)

    def health(self) -> Obj:
        return dict(self.api("/api/health"))

    def search(self, **params: Any) -> list[Obj]:
        return list(self.api("/api/search", params))

    def dashboard(self, uid: str) -> Obj:
        return dict(self.api(f"/api/dashboards/uid/{uid}"))

    def board(self, uid: str, datasource: Obj) -> Board:
        interval = (datasource.get("jsonData") or {}).get("timeInterval") or "15s"
        return Board(self.dashboard(uid)["dashboard"], parse_duration(str(interval)))

    def datasources(self) -> list[Obj]:
        return list(self.api("/api/datasources"))

    def default_datasource(self, kind: str = "prometheus") -> Obj:
        """What a dashboard's ``datasource`` variable of type ``kind`` picks: the default
        datasource when it is of that type, else the first of that type."""
        found = [d for d in self.datasources() if d.get("type") == kind]
        if not found:
            raise GrafanaError(404, f"no {kind} datasource is provisioned")
        return next((d for d in found if d.get("isDefault")), found[0])

    def proxy(self, datasource_uid: str, path: str, params: Any) -> Any:
        """GET a Prometheus API path through the datasource proxy: its ``data``."""
        response = self.client.get(f"/api/datasources/proxy/uid/{datasource_uid}{path}",
                                   params=params)
        try:
            body = response.json()
        except ValueError:
            raise PrometheusError(response.status_code, "not_json",
                                  response.text[:200]) from None
        if not isinstance(body, dict) or body.get("status") != "success":
            if isinstance(body, dict) and "status" not in body:
                raise GrafanaError(response.status_code, str(body.get("message")))
            raise PrometheusError(response.status_code, str(body.get("errorType")),
                                  str(body.get("error")))
        return body["data"]

    def query(self, datasource_uid: str, expr: str, time: float | None = None) -> Obj:
        params = {"query": expr, **({"time": str(time)} if time is not None else {})}
        return dict(self.proxy(datasource_uid, "/api/v1/query", params))

    def query_range(self, datasource_uid: str, expr: str, start: float, end: float,
                    step: float) -> Obj:
        return dict(self.proxy(datasource_uid, "/api/v1/query_range",
                               {"query": expr, "start": str(start), "end": str(end),
                                "step": str(step)}))

    def resolve(self, board: Board, datasource_uid: str, name: str) -> list[str]:
        """Fill in the options of variable ``name`` as Grafana does when the dashboard loads
        (variables it refers to must be resolved or selected first)."""
        var = board.variable(name)
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        text = str(query or "")
        if var.get("type") == "custom":
            options = [o.strip() for o in text.split(",") if o.strip()]
        else:
            match = re.fullmatch(r"\s*query_result\((.*)\)\s*", text, re.S)
            if not match:
                raise GrafanaError(400, f"variable ${name}: {text!r} is not a query_result() "
                                        "query (the one kind the suite resolves)")
            rows = self.query(datasource_uid, board.render(match.group(1)))["result"]
            options = options_from(query_result_rows(rows), str(var.get("regex") or ""))
        board.options[name] = options
        return options
