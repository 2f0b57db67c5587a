"""HTTP for the REST sources: httpx (one pooled connection per run), the tenant's rate limit before every
attempt, tenacity for retries.

- 429 and 503 wait what ``Retry-After`` says (seconds or an HTTP date; longer than ``api.max_backoff_seconds``
  fails at once); other 5xx, timeouts and broken connections wait with jittered exponential backoff; at most
  ``api.max_attempts`` attempts.
- 401/403 (and the ``auth_codes`` of an API that reports errors in a 200 body) fail at once, naming the recipe
  and the secret to fix — never its value.
- A body that is not JSON is one line naming the stream, the method, the URL path (never the query string: it
  may hold a key) and the status.
- A next-page URL on another host than the endpoint is refused (the credentials would go with it).
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import orjson
import tenacity

from dativo_ingest.engines.native.rest.auth import CredentialsRefused
from dativo_ingest.engines.native.rest.limits import RateLimit
from dativo_ingest.engines.native.rest.spec import ErrorsSpec
from dativo_ingest.engines.native.rest.templates import dig
from dativo_ingest.errors import InfrastructureError, SourceError

log = logging.getLogger(__name__)
#: httpx logs every request's full URL at INFO, query string included (where an API key may be): not ours
logging.getLogger("httpx").setLevel(logging.WARNING)

USER_AGENT = "dativo-ingest (native REST engine)"


@dataclass(frozen=True)
class Page:
    """One answered request: the response and its decoded JSON body."""

    response: httpx.Response
    body: Any
    #: the URL path that was asked (no query string)
    path: str


@dataclass(frozen=True)
class _Attempts:
    """What tenacity's wait strategies read of a retry state: the number of the attempt that failed."""

    attempt_number: int


class _Retry(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now: a number of seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class ApiClient:
    """Requests to one API for one run."""

    def __init__(self, *, base_url: str, auth: httpx.Auth | None, headers: dict[str, str], timeout: float,
                 limit: RateLimit, errors: ErrorsSpec | None, max_attempts: int, max_backoff: float,
                 recipe: Path | str | None, auth_fix: str,
                 redact: Callable[[str], str] = lambda text: text) -> None:
        self.base = httpx.URL(base_url)
        self._base_path = self.base.path.rstrip("/")
        self._backoff = tenacity.wait_exponential_jitter(multiplier=0.5, max=min(30.0, max_backoff), jitter=0.5)
        self.client = httpx.Client(base_url=base_url, auth=auth, timeout=timeout,
                                   headers={"User-Agent": USER_AGENT, "Accept": "application/json", **headers})
        self.limit = limit
        self.errors = errors
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        self.recipe = recipe
        self.auth_fix = auth_fix
        self.redact = redact
        #: requests sent, retries included
        self.requests = 0

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request, with retries -----------------------------------------------------------------------
    def request(self, stream: str, method: str, url: str, *, params: dict[str, Any] | None = None,
                json: Any = None, headers: dict[str, str] | None = None) -> Page:
        """Send one request (retried as the module says); the decoded body, or a one-line error."""
        if url.startswith("/"):
            path = self._base_path + url
        else:
            target = httpx.URL(url)
            if target.is_absolute_url and (target.scheme, target.host, target.port) != \
                    (self.base.scheme, self.base.host, self.base.port):
                raise SourceError(self.redact(f"stream '{stream}': the API's next page is on another host "
                                              f"({target.host}); not followed, the credentials would go with it"))
            path = target.path if target.is_absolute_url else self._base_path + "/" + url
        try:  # the first attempt without the retry machinery: most requests need no more
            return self._once(stream, method, url, path, params, json, headers)
        except _Retry as first:
            failed = first
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retry),
            stop=tenacity.stop_after_attempt(self.max_attempts - 1),
            wait=self._wait,
            before_sleep=lambda state: self._log_retry(stream, method, path, state, offset=1),
            reraise=True,
        )
        self._log_first(stream, method, path, failed)
        time.sleep(self._wait_after(failed, 1))
        try:
            for attempt in retrying:
                with attempt:
                    return self._once(stream, method, url, path, params, json, headers)
        except _Retry as exc:
            raise SourceError(self.redact(f"stream '{stream}': {method} {path} failed after {self.max_attempts} "
                                          f"attempts: {exc.reason} (the API keeps failing; run again later, or "
                                          f"raise api.max_attempts in {self.recipe})")) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return self._wait_after(exc, state.attempt_number + 1)

    def _wait_after(self, exc: BaseException | None, failures: int) -> float:
        """Retry-After when the API gave one, else jittered exponential backoff after ``failures`` failures."""
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        return float(self._backoff(_Attempts(failures)))

    def _log_first(self, stream: str, method: str, path: str, exc: _Retry) -> None:
        if self.max_attempts > 1:
            log.warning("stream %s: %s %s: %s; attempt 2 of %d", stream, method, path, exc.reason,
                        self.max_attempts)

    def _log_retry(self, stream: str, method: str, path: str, state: tenacity.RetryCallState, *,
                   offset: int) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0
        log.warning("stream %s: %s %s: %s; attempt %d of %d in %.1f s", stream, method, path,
                    getattr(exc, "reason", exc), state.attempt_number + 1 + offset, self.max_attempts, wait)

    def _once(self, stream: str, method: str, url: str, path: str, params: dict[str, Any] | None,
              json: Any, headers: dict[str, str] | None) -> Page:
        self.limit.wait()
        self.requests += 1
        try:
            response = self.client.request(method, url, params=params, json=json, headers=headers)
        except CredentialsRefused as exc:
            raise self._refused(stream, method, exc.where, f"HTTP {exc.status} from the token endpoint") from None
        except httpx.TimeoutException as exc:
            raise _Retry(f"timed out ({type(exc).__name__}, timeout {self.client.timeout.read} s)") from None
        except httpx.TransportError as exc:
            raise _Retry(f"connection failed ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:  # a body that cannot be decoded (gzip), a malformed URL
            raise SourceError(self.redact(f"stream '{stream}': {method} {path}: {type(exc).__name__}")) from None
        status = response.status_code
        if 300 <= status < 400:
            raise SourceError(self.redact(f"stream '{stream}': {method} {path} answered HTTP {status}, a redirect "
                                          "(not followed: is connection.endpoint the API's base URL?)"))
        if status == 429 or status >= 500:
            after = retry_after_seconds(response.headers.get("Retry-After"))
            self._refuse_long_wait(stream, method, path, status, after)
            raise _Retry(f"HTTP {status}", after)
        if status in (401, 403):
            raise self._refused(stream, method, path, f"HTTP {status}")
        body = self._decode(stream, method, path, response)
        if status >= 400:
            raise SourceError(self.redact(f"stream '{stream}': {method} {path} answered HTTP {status}: "
                                          f"{_api_message(body)}"))
        if self.errors is not None:
            self._body_error(stream, method, path, response, body)
        return Page(response, body, path)

    # -- failures ------------------------------------------------------------------------------------------
    def _refuse_long_wait(self, stream: str, method: str, path: str, status: int, after: float | None) -> None:
        if after is not None and after > self.max_backoff:
            raise SourceError(self.redact(
                f"stream '{stream}': {method} {path} answered HTTP {status} asking to wait {after:.0f} s, longer "
                f"than api.max_backoff_seconds ({self.max_backoff:.0f} s) (run again later, or raise it in "
                f"{self.recipe})"))

    def _refused(self, stream: str, method: str, path: str, what: str) -> InfrastructureError:
        return InfrastructureError(self.redact(
            f"{self.recipe}: the API refused the credentials: {what} on {method} {path} (stream '{stream}') "
            f"({self.auth_fix})"))

    def _decode(self, stream: str, method: str, path: str, response: httpx.Response) -> Any:
        content = response.content
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            kind = response.headers.get("Content-Type", "no content type").split(";")[0]
            raise SourceError(self.redact(
                f"stream '{stream}': {method} {path} answered HTTP {response.status_code} with a body that is not "
                f"JSON ({kind}, {len(content)} bytes) (is connection.endpoint the API's base URL?)")) from None

    def _body_error(self, stream: str, method: str, path: str, response: httpx.Response, body: Any) -> None:
        errors = self.errors
        assert errors is not None
        if dig(body, errors.ok_path) is not False:
            return
        code = str(dig(body, errors.message_path) if errors.message_path else "") or "no error code"
        if code in errors.auth_codes:
            raise self._refused(stream, method, path, f"error '{code}'")
        if code in errors.retry_codes:
            after = retry_after_seconds(response.headers.get("Retry-After"))
            self._refuse_long_wait(stream, method, path, response.status_code, after)
            raise _Retry(f"error '{code}'", after)
        raise SourceError(self.redact(f"stream '{stream}': {method} {path} answered error '{code[:200]}'"))


def _api_message(body: Any) -> str:
    """The API's own words about a 4xx, short (``error.message``, ``message``, ``error``)."""
    for path in ("error.message", "message", "error", "detail", "errors.0.message"):
        found = dig(body, path)
        if isinstance(found, str) and found:
            return " ".join(found.split())[:200]
    return "no message"
