"""A client of the Prometheus HTTP API (v1), as the 1.26 addon (Prometheus v3.2.1) serves it."""

from __future__ import annotations

from typing import Any

import httpx

from pytest_istiolab.observability.http import AddonClient, AddonError


class PrometheusError(AddonError):
    """An error envelope: ``errorType`` (``bad_data``, ``execution`` …) and ``error``."""

    addon = "Prometheus"

    def __init__(self, status: int, error_type: str, message: str) -> None:
        self.error_type = error_type
        super().__init__(status, f"{error_type}: {message}")
        self.message = message


class Prometheus(AddonClient):
    def api(self, path: str, params: Any = None) -> Any:
        """GET ``/api/v1/<path>``: its ``data``, or :class:`PrometheusError`."""
        response = self.get(f"/api/v1/{path}", params)
        try:
            body = response.json()
        except ValueError:
            raise PrometheusError(response.status_code, "not_json", response.text[:200]) from None
        if not isinstance(body, dict) or body.get("status") != "success":
            envelope = body if isinstance(body, dict) else {}
            raise PrometheusError(response.status_code, str(envelope.get("errorType")),
                                  str(envelope.get("error", body)))
        return body["data"]

    def query(self, query: str, time: float | None = None) -> list[dict[str, Any]]:
        """An instant query's ``result`` (vector: ``[{"metric": ..., "value": [t, "v"]}]``)."""
        params = {"query": query, **({"time": str(time)} if time is not None else {})}
        return self.api("query", params)["result"]

    def value(self, query: str) -> float | None:
        """The single value of a one-element vector or scalar query (None when empty)."""
        data = self.api("query", {"query": query})
        if data["resultType"] == "scalar":
            return float(data["result"][1])
        result = data["result"]
        return float(result[0]["value"][1]) if result else None

    def query_range(self, query: str, start: float, end: float, step: float) -> list[dict]:
        return self.api("query_range", {"query": query, "start": str(start), "end": str(end),
                                        "step": str(step)})["result"]

    def series(self, *matches: str) -> list[dict[str, str]]:
        return self.api("series", [("match[]", m) for m in matches])

    def labels(self) -> list[str]:
        return self.api("labels")

    def label_values(self, name: str) -> list[str]:
        return self.api(f"label/{name}/values")

    def targets(self) -> dict[str, Any]:
        return self.api("targets")

    def buildinfo(self) -> dict[str, Any]:
        return self.api("status/buildinfo")

    def runtimeinfo(self) -> dict[str, Any]:
        return self.api("status/runtimeinfo")

    def config(self) -> str:
        return str(self.api("status/config")["yaml"])

    def ready(self) -> bool:
        try:
            response = self.client.get("/-/ready")
        except httpx.HTTPError:
            return False
        return response.status_code == 200
