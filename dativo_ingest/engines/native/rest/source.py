"""A REST source set up from a job plan: the recipe's ``api:`` section, the connection, the client.

Shared by the read (``reader.py``), ``check`` and ``test-connector``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from dativo_ingest.engines.native.rest.auth import make_auth
from dativo_ingest.engines.native.rest.client import ApiClient
from dativo_ingest.engines.native.rest.limits import rate_limit
from dativo_ingest.engines.native.rest.spec import ApiSpec, StreamSpec, load_api_spec
from dativo_ingest.engines.native.rest.templates import MissingValue, connection_keys, render
from dativo_ingest.errors import ConfigError

if TYPE_CHECKING:
    from dativo_ingest.config.plan import JobPlan

DEFAULT_TIMEOUT_S = 30.0


def recipe_path(plan: JobPlan) -> Path:
    """The source recipe's file, for messages (the loader found it the same way)."""
    root = plan.project_root
    given = plan.job.source_connector_path
    if given:
        path = Path(given).expanduser()
        candidates = [path if path.is_absolute() else root / path,
                      root / "connectors" / "sources" / f"{path.stem}.yaml", root / "connectors" / f"{path.stem}.yaml"]
    else:
        name = plan.source_connector
        candidates = [root / "connectors" / "sources" / f"{name}.yaml", root / "connectors" / f"{name}.yaml"]
    found = next((c for c in candidates if c.is_file()), candidates[0])
    try:
        return found.relative_to(root)
    except ValueError:
        return found


@dataclass
class RestSource:
    """Everything a read of one job needs, checked."""

    spec: ApiSpec
    recipe: Path
    connection: dict[str, Any]
    tenant_id: str
    connector: str
    timeout: float
    rate_limits: dict[str, Any] | None
    auth_fix: str
    redact: Any

    @classmethod
    def from_plan(cls, plan: JobPlan) -> RestSource:
        """The job's REST source; ``ConfigError`` naming the recipe and the field on any problem."""
        recipe = recipe_path(plan)
        raw = (plan.source_recipe.model_extra or {}).get("api") if plan.source_recipe is not None else None
        spec = load_api_spec(raw, recipe)
        return cls.build(spec, recipe, plan.source.connection_values, tenant_id=plan.tenant_id,
                         connector=plan.source_connector,
                         rate_limits=plan.source_recipe.rate_limits if plan.source_recipe is not None else None,
                         auth_fix=_auth_fix(plan, spec), redact=plan.secrets.redact)

    @classmethod
    def build(cls, spec: ApiSpec, recipe: Path, connection: dict[str, Any], *, tenant_id: str, connector: str,
              rate_limits: dict[str, Any] | None, auth_fix: str, redact: Any) -> RestSource:
        """A source from its parts, the connection checked (endpoint, timeout, the values the api section uses)."""
        endpoint = str(connection.get("endpoint") or "").strip()
        if not endpoint:
            raise ConfigError(recipe, "is empty", field="connection_template.endpoint",
                              fix="set the API's base URL, e.g. endpoint: \"${API_BASE:-https://api.example.com}\"")
        url = httpx.URL(endpoint)
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError(recipe, "is not an http(s) URL", field="connection_template.endpoint",
                              fix="give the API's base URL, e.g. https://api.example.com")
        timeout = connection.get("timeout", DEFAULT_TIMEOUT_S)
        try:
            timeout = float(timeout if timeout not in (None, "") else DEFAULT_TIMEOUT_S)
            if timeout <= 0:
                raise ValueError
        except (TypeError, ValueError):
            raise ConfigError(recipe, "must be a positive number of seconds", field="connection_template.timeout",
                              fix="e.g. timeout: 30") from None
        source = cls(spec=spec, recipe=recipe, connection=connection, tenant_id=tenant_id, connector=connector,
                     timeout=timeout, rate_limits=rate_limits, auth_fix=auth_fix, redact=redact)
        source.check_connection_values()
        return source

    def check_connection_values(self) -> None:
        """Every ``{connection.NAME}`` the API section uses is set (an empty credential is refused here)."""
        used = connection_keys(self.spec.auth.model_dump()) | connection_keys(self.spec.headers)
        for stream in self.spec.streams.values():
            used |= connection_keys(stream.model_dump(by_alias=True))
        for key in sorted(used):
            if key not in self.connection:
                raise ConfigError(self.recipe, f"{{connection.{key}}} is used but connection_template has no '{key}'",
                                  field="api", fix=f"add {key}: \"${{VAR}}\" to connection_template")
        for key in sorted(connection_keys(self.spec.auth.model_dump())):
            if self.connection.get(key) in (None, ""):
                raise ConfigError(self.recipe, "is empty", field=f"connection_template.{key}",
                                  fix=f"set the credential in the tenant's secrets ({self.auth_fix})")

    def client(self) -> ApiClient:
        """A client for one run: auth, headers, timeout, the tenant's shared rate limit, retries."""
        auth, _ = make_auth(self.spec.auth, self.connection, tenant_id=self.tenant_id, connector=self.connector,
                            timeout=self.timeout)
        headers = {k: str(v) for k, v in self.render(self.spec.headers, {}).items() if v not in (None, "")}
        return ApiClient(base_url=str(self.connection["endpoint"]).strip(), auth=auth, headers=headers,
                         timeout=self.timeout,
                         limit=rate_limit(self.tenant_id, self.connector, self.rate_limits, self.recipe),
                         errors=self.spec.errors, max_attempts=self.spec.max_attempts,
                         max_backoff=self.spec.max_backoff_seconds, recipe=self.recipe, auth_fix=self.auth_fix,
                         redact=self.redact)

    def credential_params(self) -> list[str]:
        """Query parameters that carry a credential (never stored)."""
        return make_auth(self.spec.auth, self.connection, tenant_id=self.tenant_id, connector=self.connector,
                         timeout=self.timeout)[1]

    def render(self, value: Any, context: dict[str, Any]) -> Any:
        """``render`` with the connection in the context; a missing connection value is a ConfigError."""
        try:
            return render(value, {"connection": self.connection, **context})
        except MissingValue as exc:
            raise ConfigError(self.recipe, f"{{connection.{exc.args[0]}}} is not in connection_template",
                              field="api", fix=f"add {exc.args[0]}: \"${{VAR}}\" to connection_template") from None

    def stream(self, name: str, where: str = "source.objects") -> StreamSpec:
        """A stream of the recipe, or a one-line error listing the known ones."""
        found = self.spec.streams.get(name)
        if found is None:
            raise ConfigError(None, f"'{name}' is not a stream of {self.recipe} (known: "
                              f"{', '.join(self.spec.streams)})", field=where,
                              fix="choose one of them, or add the stream to the recipe's api.streams")
        return found


def _auth_fix(plan: JobPlan, spec: ApiSpec) -> str:
    job_conn = (plan.job.source.connection if plan.job.source is not None else None) or {}
    template = plan.source_recipe.connection_template if plan.source_recipe is not None else {}
    return auth_fix(spec, template, job_conn, plan.job_path)


def auth_fix(spec: ApiSpec, template: dict[str, Any], job_conn: dict[str, Any], job_path: Path | None) -> str:
    """``check STRIPE_API_KEY in the tenant's secrets …``: the variables behind the auth's connection values."""
    from dativo_ingest.config.expand import variables_in

    keys = sorted(connection_keys(spec.auth.model_dump()))
    names: list[str] = []
    for key in keys:
        if key in job_conn:
            names.append(f"source.connection.{key} in {job_path}")
        else:
            found = sorted(variables_in(template.get(key)))
            names.extend(found or [f"connection_template.{key}"])
    if not names:
        return "check the credentials the recipe's api.auth names"
    return f"check {', '.join(names)} in the tenant's secrets; the value is never shown"
