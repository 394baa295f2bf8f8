"""What the addon clients share: one ``httpx.Client`` per addon base URL, JSON answers, and an
error that names the addon, the HTTP status and the addon's own message.

Each client (Prometheus, Grafana, Kiali, Jaeger) says where its API lives and how its error
envelope reads (:meth:`AddonClient.error_message`); connection errors are left as
``httpx.TransportError`` (:data:`CONNECTION_ERRORS`) for the waits to retry.
"""

from __future__ import annotations

from typing import Any

import httpx

CONNECTION_ERRORS = (httpx.TransportError,)


class AddonError(Exception):
    """An addon answered, but not with what was asked: HTTP status and its own message."""

    addon = "the addon"

    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message
        super().__init__(f"{self.addon} answered {status}: {message}")


class AddonClient:
    """GETs against ``base_url``; :meth:`json` decodes an answer or raises ``error``."""

    error: type[AddonError] = AddonError

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = httpx.Client(base_url=self.base_url, timeout=timeout, trust_env=False)

    def __enter__(self) -> AddonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def get(self, path: str, params: Any = None) -> httpx.Response:
        return self.client.get(path, params=params)

    def json(self, path: str, params: Any = None) -> Any:
        """The decoded JSON of ``GET path``; ``error`` when it is not JSON or the addon says
        it failed (:meth:`error_message`)."""
        response = self.get(path, params)
        try:
            body = response.json()
        except ValueError:
            raise self.not_json(response) from None
        message = self.error_message(response, body)
        if message is not None:
            raise self.error(response.status_code, message)
        return body

    def not_json(self, response: httpx.Response) -> AddonError:
        return self.error(response.status_code, response.text[:200])

    def error_message(self, response: httpx.Response, body: Any) -> str | None:
        """The addon's message when ``body`` is a failure, else None (default: not 2xx)."""
        if response.is_success:
            return None
        message = body.get("message") if isinstance(body, dict) else None
        return str(message or body)
