"""A small client for Superset's REST API (`/api/v1/...`): login as the admin, CSRF token, JSON calls.

Errors are one line (`superset: POST /api/v1/chart/ answered 422: {...}`); the password is sent in the
login body only and never appears in a message.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from pipelines.stack.errors import StackError


class SupersetApi:
    def __init__(self, base_url: str, timeout: float = 120) -> None:
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.http = requests.Session()

    def login(self, user: str, password: str) -> SupersetApi:
        r = self.http.post(f"{self.base}/api/v1/security/login", timeout=self.timeout,
                           json={"username": user, "password": password, "provider": "db", "refresh": True})
        if r.status_code != 200:
            raise StackError(f"superset: login as {user} failed ({r.status_code}: {_short(r.text)})")
        self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        token = self.call("GET", "/api/v1/security/csrf_token/")["result"]
        self.http.headers.update({"X-CSRFToken": token, "Referer": self.base})
        return self

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201)) -> dict:
        r = self.http.request(method, f"{self.base}{path}", json=body, timeout=self.timeout)
        if r.status_code not in ok:
            raise StackError(f"superset: {method} {path.split('?')[0]} answered {r.status_code}: {_short(r.text)}",
                             r.text[:4000])
        return r.json() if r.content else {}

    def list_all(self, resource: str, columns: tuple[str, ...] = ()) -> list[dict]:
        """Every object of `/api/v1/<resource>/` (pages of 100)."""
        out: list[dict] = []
        page = 0
        cols = f",columns:!({','.join(columns)})" if columns else ""
        while True:
            body = self.call("GET", f"/api/v1/{resource}/?q=(page:{page},page_size:100{cols})")
            out.extend(body.get("result") or [])
            if len(out) >= body.get("count", 0) or not body.get("result"):
                return out
            page += 1

    def sql(self, database_id: int, sql: str, schema: str | None = None) -> tuple[int, dict]:
        """Run `sql` through SQL Lab synchronously: (HTTP status, answer). For tests and checks."""
        r = self.http.post(f"{self.base}/api/v1/sqllab/execute/", timeout=self.timeout,
                           json={"database_id": database_id, "sql": sql, "schema": schema, "runAsync": False,
                                 "queryLimit": 1000, "client_id": _client_id()})
        try:
            return r.status_code, r.json()
        except json.JSONDecodeError:
            return r.status_code, {"message": r.text[:2000]}


def _client_id() -> str:
    import secrets

    return secrets.token_hex(5)  # SQL Lab wants a short id per query (max 11 characters)


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + " ..."
