"""Small local servers that speak HubSpot's CRM v3 API and Slack's Web API as documented, for the tests of the
native REST engine (and for trying the shipped jobs from a fresh clone).

- HubSpot: ``GET /crm/v3/objects/<object>`` (``limit``, ``after``) and ``POST /crm/v3/objects/<object>/search``
  (``filterGroups`` with GT/GTE/LT/LTE/EQ, one sort, ``limit`` ≤ 200, ``after``; past 10 000 results a 400,
  as HubSpot does), ``{"results", "paging": {"next": {"after"}}}``, a bearer token (401 with HubSpot's error body).
- Slack: ``/api/auth.test``, ``/api/conversations.list`` and ``/api/conversations.history`` (``oldest`` exclusive,
  newest first, ``has_more``, ``response_metadata.next_cursor``), ``{"ok": false, "error": "invalid_auth"}`` with
  HTTP 200 for a bad token, 429 ``ratelimited`` with ``Retry-After``.

Each server runs in a thread of the test process on 127.0.0.1 and a free port. Tests script failures for the
next requests of a path (``fail_next``: 429 with Retry-After, 500, 401, a body that is not JSON), slow it down
(``delay``), and read back every request it answered (``requests``).

Standalone: ``python -m tests.integration.rest.fake_api hubspot|slack [--port N]`` serves sample data.
"""

from __future__ import annotations

import argparse
import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

HUBSPOT_TOKEN = "pat-example-not-a-real-token"
SLACK_TOKEN = "xoxb-example-not-a-real-token"
HUBSPOT_SEARCH_LIMIT = 10_000


@dataclass
class Reply:
    """A scripted answer: status, body (bytes), headers."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    """A request the server answered."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int


class FakeApi:
    """The shared machinery: a threaded HTTP server, scripted failures, a request log."""

    token = ""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Seen] = []
        self.scripted: dict[str, list[Reply | None]] = {}
        self.delay = 0.0
        self.server: ThreadingHTTPServer | None = None

    # -- for tests ---------------------------------------------------------------------------------------
    def fail_next(self, path: str, *replies: Reply | None) -> None:
        """The next requests of ``path`` get these replies, in order, before the normal answers (None: answer
        that request normally)."""
        with self.lock:
            self.scripted.setdefault(path, []).extend(replies)

    def seen(self, path: str | None = None) -> list[Seen]:
        with self.lock:
            return [r for r in self.requests if path is None or r.path == path]

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @contextmanager
    def running(self, port: int = 0) -> Iterator[FakeApi]:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.server.daemon_threads = True
        thread = threading.Thread(target=self.server.serve_forever, name=type(self).__name__, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
            thread.join(timeout=10)

    # -- for subclasses ----------------------------------------------------------------------------------
    def answer(self, method: str, path: str, query: dict[str, str], body: Any, headers: dict[str, str]) -> Reply:
        raise NotImplementedError

    def handle(self, method: str, path: str, query: dict[str, str], raw: bytes, headers: dict[str, str]) -> Reply:
        if self.delay:
            time.sleep(self.delay)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self.lock:
            queue = self.scripted.get(path)
            reply = queue.pop(0) if queue else None  # None: the normal answer
        if reply is None:
            reply = self.answer(method, path, query, body, headers)
        with self.lock:
            self.requests.append(Seen(method, path, query, body, reply.status))
        return reply


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
                query.update({k: v[-1] for k, v in parse_qs(raw.decode()).items()})
                raw = b""
            reply = api.handle(method, parts.path, query, raw, {k.lower(): v for k, v in self.headers.items()})
            self.send_response(reply.status)
            headers = {"Content-Type": "application/json; charset=utf-8", **reply.headers}
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def as_json(status: int, body: Any, **headers: str) -> Reply:
    return Reply(status, json.dumps(body).encode(), dict(headers))


def not_json(status: int = 200) -> Reply:
    """What a proxy or a wrong base URL answers: an HTML page."""
    return Reply(status, b"<html><body><h1>Bad Gateway</h1></body></html>", {"Content-Type": "text/html"})


def iso_ms(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _millis(value: Any) -> float:
    text = str(value)
    if text.lstrip("-").isdigit():
        return float(text)
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000


# -- HubSpot -------------------------------------------------------------------------------------------------


class HubSpot(FakeApi):
    """CRM objects in memory; ``contacts`` use ``lastmodifieddate``, other objects ``hs_lastmodifieddate``."""

    token = HUBSPOT_TOKEN

    def __init__(self) -> None:
        super().__init__()
        self.objects: dict[str, list[dict[str, Any]]] = {"contacts": [], "companies": [], "deals": []}
        self.clock = datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc)
        #: OAuth: the refresh token that is valid now (each exchange replaces it) and the access tokens issued
        self.refresh_token = "rt-1"
        self.access_tokens: set[str] = set()
        self.exchanges = 0

    def _tick(self) -> datetime:
        self.clock += timedelta(seconds=1, milliseconds=7)
        return self.clock

    @staticmethod
    def modified_key(obj: str) -> str:
        return "lastmodifieddate" if obj == "contacts" else "hs_lastmodifieddate"

    def add(self, obj: str, n: int, **properties: Any) -> list[str]:
        """``n`` new records (ids in order); returns their ids."""
        with self.lock:
            ids = []
            for _ in range(n):
                rows = self.objects[obj]
                ident = str(len(rows) + 1)
                now = self._tick()
                props = {"hs_object_id": ident, "createdate": iso_ms(now), self.modified_key(obj): iso_ms(now)}
                if obj == "contacts":
                    props.update(email=f"contact{ident}@example.com", firstname=f"First{ident}",
                                 lastname=f"Last{ident}", phone=None, company="Acme")
                props.update(properties)
                rows.append({"id": ident, "properties": props, "createdAt": iso_ms(now), "updatedAt": iso_ms(now),
                             "archived": False})
                ids.append(ident)
            return ids

    def update(self, obj: str, ident: str, **properties: Any) -> None:
        with self.lock:
            row = next(r for r in self.objects[obj] if r["id"] == ident)
            now = self._tick()
            row["properties"].update(properties, **{self.modified_key(obj): iso_ms(now)})
            row["updatedAt"] = iso_ms(now)

    def _oauth(self, form: dict[str, str]) -> Reply:
        """``POST /oauth/v1/token``: a refresh token for an access token; this server also rotates the refresh
        token (the old one stops working), to test that a rotated token is kept."""
        with self.lock:
            if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != self.refresh_token \
                    or form.get("client_id") != "client-1" or form.get("client_secret") != "client-secret-1":
                return as_json(400, {"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown refresh token"})
            self.exchanges += 1
            access = f"at-{self.exchanges}"
            self.access_tokens.add(access)
            self.refresh_token = f"rt-{self.exchanges + 1}"
            return as_json(200, {"token_type": "bearer", "access_token": access, "refresh_token": self.refresh_token,
                                 "expires_in": 1800})

    def answer(self, method: str, path: str, query: dict[str, str], body: Any, headers: dict[str, str]) -> Reply:
        if path == "/oauth/v1/token":
            return self._oauth(query)
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        if bearer != self.token and bearer not in self.access_tokens:
            return as_json(401, {"status": "error", "message": "Authentication credentials not found. This API "
                                 "supports OAuth 2.0 authentication …", "correlationId": "c0ffee",
                                 "category": "INVALID_AUTHENTICATION"})
        parts = path.strip("/").split("/")
        if len(parts) < 4 or parts[:3] != ["crm", "v3", "objects"] or parts[3] not in self.objects:
            return as_json(404, {"status": "error", "message": f"Unable to route {method} {path}",
                                 "category": "OBJECT_NOT_FOUND"})
        obj = parts[3]
        with self.lock:
            rows = [json.loads(json.dumps(r)) for r in self.objects[obj]]
        if method == "GET" and len(parts) == 4:
            limit = min(int(query.get("limit") or 10), 100)
            start = int(query.get("after") or 0)
            return self._page(rows, start, limit, with_total=False)
        if method == "POST" and parts[4:] == ["search"]:
            body = body if isinstance(body, dict) else {}
            limit = min(int(body.get("limit") or 10), 200)
            start = int(body.get("after") or 0)
            if start + limit > HUBSPOT_SEARCH_LIMIT:
                return as_json(400, {"status": "error", "message": "paging past 10000 results is not supported",
                                     "category": "VALIDATION_ERROR"})
            for group in body.get("filterGroups") or []:
                for flt in group.get("filters") or []:
                    rows = [r for r in rows if _matches(r, flt)]
            for sort in (body.get("sorts") or [])[:1]:
                prop = sort["propertyName"]
                rows.sort(key=lambda r, p=prop: _millis(r["properties"].get(p) or 0),
                          reverse=sort.get("direction") == "DESCENDING")
            return self._page(rows, start, limit, with_total=True)
        return as_json(405, {"status": "error", "message": "method not allowed"})

    @staticmethod
    def _page(rows: list[dict[str, Any]], start: int, limit: int, *, with_total: bool) -> Reply:
        page = rows[start:start + limit]
        out: dict[str, Any] = {"results": page}
        if with_total:
            out["total"] = len(rows)
        if start + limit < len(rows):
            out["paging"] = {"next": {"after": str(start + limit), "link": "?after=" + str(start + limit)}}
        return as_json(200, out)


def _matches(row: dict[str, Any], flt: dict[str, Any]) -> bool:
    value = row["properties"].get(flt["propertyName"])
    if value is None:
        return False
    left, right = _millis(value), _millis(flt["value"])
    return {"GT": left > right, "GTE": left >= right, "LT": left < right, "LTE": left <= right,
            "EQ": left == right}[flt["operator"]]


# -- Slack ---------------------------------------------------------------------------------------------------


class Slack(FakeApi):
    """Public channels and their messages in memory (times are Slack ``ts`` strings)."""

    token = SLACK_TOKEN

    def __init__(self) -> None:
        super().__init__()
        self.channels: list[dict[str, Any]] = []
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.clock = 1_710_000_000.000100

    def add_channel(self, ident: str, name: str) -> None:
        with self.lock:
            self.channels.append({"id": ident, "name": name, "is_channel": True, "is_archived": False,
                                  "created": 1_700_000_000, "num_members": 3})
            self.messages.setdefault(ident, [])

    def post(self, channel: str, n: int, *, bot: bool = False) -> list[str]:
        """``n`` new messages in ``channel``; returns their ``ts``."""
        with self.lock:
            out = []
            for i in range(n):
                self.clock += 1.000123
                ts = f"{self.clock:.6f}"
                message: dict[str, Any] = {"type": "message", "ts": ts, "text": f"message {i} in {channel}"}
                if bot:
                    message.update(subtype="bot_message", bot_id="B0BOT")
                else:
                    message.update(user="U0USER" + str(i % 3), client_msg_id=f"m-{ts}")
                self.messages[channel].append(message)
                out.append(ts)
            return out

    def answer(self, method: str, path: str, query: dict[str, str], body: Any, headers: dict[str, str]) -> Reply:
        if headers.get("authorization") != f"Bearer {self.token}":
            return as_json(200, {"ok": False, "error": "invalid_auth"})
        method_name = path.removeprefix("/api/")
        if method_name == "auth.test":
            return as_json(200, {"ok": True, "url": "https://example.slack.com/", "team": "Example",
                                 "user": "dativo", "team_id": "T0TEAM", "user_id": "U0BOT"})
        limit = min(int(query.get("limit") or 100), 1000)
        start = int(base64.b64decode(query["cursor"]).decode().split(":")[1]) if query.get("cursor") else 0
        if method_name == "conversations.list":
            with self.lock:
                rows = list(self.channels)
            return self._page("channels", rows, start, limit)
        if method_name == "conversations.history":
            channel = query.get("channel")
            with self.lock:
                if channel not in self.messages:
                    return as_json(200, {"ok": False, "error": "channel_not_found"})
                rows = sorted(self.messages[channel], key=lambda m: float(m["ts"]), reverse=True)
            if query.get("oldest"):
                rows = [m for m in rows if float(m["ts"]) > float(query["oldest"])]
            return self._page("messages", rows, start, limit)
        return as_json(200, {"ok": False, "error": "unknown_method"})

    @staticmethod
    def _page(key: str, rows: list[dict[str, Any]], start: int, limit: int) -> Reply:
        page = rows[start:start + limit]
        more = start + limit < len(rows)
        cursor = base64.b64encode(f"next:{start + limit}".encode()).decode() if more else ""
        out: dict[str, Any] = {"ok": True, key: page, "response_metadata": {"next_cursor": cursor}}
        if key == "messages":
            out["has_more"] = more
        return as_json(200, out)


def ratelimited(retry_after: int = 1) -> Reply:
    """Slack's answer when a method is called too often."""
    return as_json(429, {"ok": False, "error": "ratelimited"}, **{"Retry-After": str(retry_after)})


def sample(name: str) -> FakeApi:
    """A server of ``name`` (``hubspot`` | ``slack``) holding sample data: 250 contacts; two channels of 120
    messages (and two bot messages)."""
    if name == "hubspot":
        hubspot = HubSpot()
        hubspot.add("contacts", 250)
        return hubspot
    slack = Slack()
    for ident, channel in (("C0GENERAL", "general"), ("C0RANDOM", "random")):
        slack.add_channel(ident, channel)
        slack.post(ident, 120)
    slack.post("C0RANDOM", 2, bot=True)
    return slack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("api", choices=["hubspot", "slack"])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    api = sample(args.api)
    with api.running(args.port):
        base = api.url + ("/api" if args.api == "slack" else "")
        print(f"{args.api} test API on {base} (token {api.token}); Ctrl-C stops it", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
