"""Authentication of the requests, as ``httpx.Auth`` flows: bearer token, API key (header or query parameter),
HTTP basic, OAuth2 (client credentials, or a refresh token).

OAuth2 tokens are fetched when first needed and again when they expire or a request is answered 401. A
refresh token the server rotates is kept for the next runs in ``$DATIVO_HOME/rest/tokens/<tenant>/<connector>.json``
(mode 0600) — the way the Airbyte engine keeps a connector's CONTROL config — and used while the configured
refresh token is the one it replaced: a new token in the secrets wins.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import httpx

from dativo_ingest.engines.airbyte.manifest import apply_control_config, save_control_config
from dativo_ingest.engines.native.rest.spec import AuthSpec
from dativo_ingest.engines.native.rest.templates import render
from dativo_ingest.errors import SourceError
from dativo_ingest.paths import dativo_home


class CredentialsRefused(Exception):
    """The token endpoint refused the OAuth2 credentials."""

    def __init__(self, status: int, where: str) -> None:
        super().__init__(f"HTTP {status} from the token endpoint {where}")
        self.status = status
        self.where = where


def token_store(tenant_id: str, connector: str) -> Path:
    """Where a rotated OAuth2 refresh token of this tenant and connector is kept."""
    return dativo_home() / "rest" / "tokens" / tenant_id / f"{connector}.json"


class _Static(httpx.Auth):
    def __init__(self, headers: dict[str, str], params: dict[str, str]) -> None:
        self.headers = headers
        self.params = params

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self.headers)
        if self.params:
            request.url = request.url.copy_merge_params(self.params)
        yield request


class OAuth2(httpx.Auth):
    """Client credentials or refresh-token grant; the access token is kept in memory until it expires."""

    def __init__(self, token_url: str, form: dict[str, str], store: Path | None, timeout: float) -> None:
        self.token_url = token_url
        self.form = form
        self.store = store
        self.timeout = timeout
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()
        #: the refresh token of the secrets: a kept (rotated) one is used only while this one is unchanged
        self._configured = form.get("refresh_token", "")
        if store is not None and self._configured:
            kept, applied = apply_control_config(store, {"refresh_token": self._configured})
            if applied:
                self.form = {**form, "refresh_token": str(kept["refresh_token"])}

    def _fetch(self) -> None:
        response = httpx.post(self.token_url, data=self.form, timeout=self.timeout,
                              headers={"Accept": "application/json"})
        where = httpx.URL(self.token_url).path
        if response.status_code >= 400:
            raise CredentialsRefused(response.status_code, where)
        try:
            body = response.json()
            self._token = str(body["access_token"])
        except (ValueError, KeyError, TypeError):
            raise SourceError(f"the token endpoint {where} answered HTTP {response.status_code} without an "
                              "access_token") from None
        self._expires = time.monotonic() + float(body.get("expires_in") or 3600) - 30
        rotated = body.get("refresh_token")
        if rotated and "refresh_token" in self.form and rotated != self.form["refresh_token"]:
            self.form = {**self.form, "refresh_token": str(rotated)}
            if self.store is not None:
                save_control_config(self.store, {"refresh_token": self._configured}, {"refresh_token": str(rotated)})

    def _bearer(self, *, renew: bool) -> str:
        with self._lock:
            if renew or self._token is None or time.monotonic() >= self._expires:
                self._fetch()
            return self._token or ""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._bearer(renew=False)}"
        response = yield request
        if response.status_code == 401:  # expired early, or revoked: one fresh token, one more try
            request.headers["Authorization"] = f"Bearer {self._bearer(renew=True)}"
            yield request


def make_auth(spec: AuthSpec, connection: dict[str, Any], *, tenant_id: str, connector: str,
              timeout: float) -> tuple[httpx.Auth | None, list[str]]:
    """The auth flow for ``spec`` with the connection's values, and the query parameter names that carry a
    credential (kept out of anything stored, such as a next-page URL in the state)."""
    context = {"connection": connection}

    def value(template: str | None) -> str:
        return "" if template is None else str(render(template, context) or "")

    if spec.type == "bearer":
        return _Static({"Authorization": f"Bearer {value(spec.token)}"}, {}), []
    if spec.type == "api_key":
        name, key = value(spec.name), value(spec.value)
        if spec.location == "query":
            return _Static({}, {name: key}), [name]
        return _Static({name: key}, {}), []
    if spec.type == "basic":
        return httpx.BasicAuth(value(spec.username), value(spec.password)), []
    if spec.type == "oauth2":
        form = {"grant_type": spec.effective_grant, "client_id": value(spec.client_id),
                "client_secret": value(spec.client_secret)}
        if spec.effective_grant == "refresh_token":
            form["refresh_token"] = value(spec.refresh_token)
        if spec.scope:
            form["scope"] = value(spec.scope)
        store = token_store(tenant_id, connector) if "refresh_token" in form else None
        return OAuth2(value(spec.token_url), form, store, timeout), []
    return None, []
