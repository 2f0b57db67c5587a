"""The native REST engine's parts without a server: records → Arrow, the api: section's validation, paginators,
Retry-After, the rate-limit settings."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from dativo_ingest.engines.native.rest.client import ApiClient, Page, retry_after_seconds
from dativo_ingest.engines.native.rest.limits import RateLimit, rate_limit
from dativo_ingest.engines.native.rest.paging import Paginator
from dativo_ingest.engines.native.rest.records import PageDecoder, RecordsError, output_fields
from dativo_ingest.engines.native.rest.spec import PaginatorSpec, load_api_spec
from dativo_ingest.errors import ConfigError, SourceError

FIELDS = [("id", "string"), ("created", "timestamptz"), ("address.city", "string"), ("metadata", "json"),
          ("n", "integer"), ("amount", "decimal(10,2)"), ("ok", "boolean"), ("updated", "timestamp"),
          ("ts", "timestamp"), ("channel", "string"), ("who", "string")]
MAPPING: dict[str, Any] = {"ts": "slack.ts", "channel": "{parent.id}", "who": ["user", "bot_id"]}


def _decode(records: list[Any], decoder: PageDecoder | None = None) -> dict[str, list[Any]]:
    decoder = decoder or PageDecoder(output_fields(FIELDS, MAPPING))
    batch = decoder.decode(records, {"parent": {"id": "C1"}})
    assert batch is not None
    return batch.to_pydict()


def test_a_page_becomes_the_assets_columns_with_nested_paths_json_text_and_unix_times() -> None:
    out = _decode([
        {"id": "cus_1", "created": 1700000000, "address": {"city": "Berlin", "zip": "1"}, "metadata": {"k": [1, 2]},
         "n": 3, "amount": 12.34, "ok": True, "updated": "2024-01-15T10:00:00+02:00",
         "slack": {"ts": "1512085950.000216"}, "user": "U1", "ignored": {"deep": 1}},
        {"id": "cus_2", "created": None, "address": None, "metadata": None, "n": None, "amount": 3, "ok": False,
         "updated": "2024-01-15T10:00:00.000Z", "bot_id": "B1"},
    ])
    assert out["id"] == ["cus_1", "cus_2"] and out["address.city"] == ["Berlin", None]
    assert out["created"] == [datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc), None]
    assert out["metadata"] == ['{"k":[1,2]}', None]
    assert out["n"] == [3, None] and out["amount"] == ["12.34", "3"] and out["ok"] == [True, False]
    assert out["updated"] == [datetime(2024, 1, 15, 8, 0), datetime(2024, 1, 15, 10, 0)]  # offsets → UTC
    assert out["ts"] == [datetime(2017, 11, 30, 23, 52, 30, 216), None]
    assert out["channel"] == ["C1", "C1"] and out["who"] == ["U1", "B1"]


def test_values_that_do_not_fit_stay_text_for_the_stage_never_truncated() -> None:
    decoder = PageDecoder(output_fields(FIELDS, MAPPING))
    out = _decode([{"id": 42, "n": 1.5, "ok": "yes", "created": "not a time"}, {"id": "x", "n": 2}], decoder)
    assert out["id"] == ["42", "x"]  # a number where text was expected: its JSON text
    assert out["n"] == ["1.5", "2"]  # a fraction in an integer field is not cut to 1: the stage refuses it
    assert out["ok"] == ["yes", None] and out["created"] == ["not a time", None]
    assert _decode([{"id": "y", "n": 7}], decoder)["n"] == [7]  # the next page is read fast again
    assert _decode([{"created": 10**17}], decoder)["created"] == ["100000000000000000"]  # no date: text, refused


def test_a_list_of_non_objects_is_an_error() -> None:
    with pytest.raises(RecordsError, match="not JSON objects"):
        PageDecoder(output_fields(FIELDS, {})).decode([1, 2], {})
    assert PageDecoder(output_fields(FIELDS, {})).decode([], {}) is None


def _spec(**stream: Any) -> dict[str, Any]:
    return {"streams": {"items": {"path": "/items", **stream}}}


@pytest.mark.parametrize(("raw", "message"), [
    (_spec(paginator={"type": "cursor", "cursor_path": "next"}),
     "api.streams.items.paginator: a cursor paginator needs param (a query parameter) or body_path"),
    (_spec(parent={"stream": "nope"}), "api: streams.items.parent.stream: 'nope' is not a stream (known: items)"),
    (_spec(params={"c": "{parent.id}"}), "api.streams.items.params.c: {parent.id} needs a parent stream"),
    (_spec(params={"c": "{connection}"}), "api.streams.items.params.c: unknown placeholder {connection}"),
    (_spec(params={"c": "${TOKEN}"}), "api: ${TOKEN} is not expanded here"),
    (_spec(methd="GET"), "api.streams.items.methd: unknown key (did you mean 'method'?)"),
    ({"streams": {}}, "api.streams: must not be empty"),
])
def test_the_api_section_is_validated_in_one_line(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_api_spec(raw, "connectors/sources/x.yaml")
    assert str(info.value).startswith(f"connectors/sources/x.yaml: {message}"), str(info.value)
    assert "\n" not in str(info.value)


def test_literal_braces_are_left_alone() -> None:
    spec = load_api_spec(_spec(params={"q": '{"a": 1}', "t": "{other}x"}), "r.yaml")
    assert spec.streams["items"].params["q"] == '{"a": 1}'


def _page(body: Any, headers: dict[str, str] | None = None, url: str = "https://api.example.com/items") -> Page:
    request = httpx.Request("GET", url)
    return Page(httpx.Response(200, json=body, headers=headers, request=request), body, "/items")


def test_paginators_find_the_next_page_and_stop() -> None:
    stripe = Paginator(PaginatorSpec(type="cursor", last_record_field="id", param="starting_after",
                                     has_more_path="has_more"))
    assert stripe.next("s", {}, _page({"has_more": True}), [{"id": "a"}, {"id": "b"}]) == {"token": "b"}
    assert stripe.next("s", {}, _page({"has_more": False}), [{"id": "c"}]) is None
    assert stripe.apply({"token": "b"}, "/items", {"limit": 10}, None) == (
        "/items", {"limit": 10, "starting_after": "b"}, None)
    with pytest.raises(SourceError, match="the same next page twice"):
        stripe.next("s", {"token": "b"}, _page({"has_more": True}), [{"id": "b"}])

    hubspot = Paginator(PaginatorSpec(type="cursor", cursor_path="paging.next.after", body_path="after"))
    assert hubspot.apply({"token": "100"}, "/s", {}, {"limit": 100}) == ("/s", {}, {"limit": 100, "after": "100"})
    assert hubspot.next("s", {}, _page({"paging": {}}), [{}]) is None

    offset = Paginator(PaginatorSpec(type="offset", limit=2))
    assert offset.next("s", {}, _page({}), [1, 2]) == {"offset": 2}
    assert offset.next("s", {"offset": 2}, _page({}), [3]) is None

    link = Paginator(PaginatorSpec(type="link_header"), credential_params=["api_key"])
    nxt = link.next("s", {}, _page([], {"Link": '<https://api.example.com/items?page=2&api_key=SECRET>; rel="next"'}),
                    [1])
    assert nxt == {"url": "https://api.example.com/items?page=2"}  # the key never reaches the state
    assert not link.valid({"token": "x"}) and link.valid({}) and link.valid(nxt)


def test_a_next_page_on_another_host_is_not_followed() -> None:
    sent: list[httpx.Request] = []
    client = ApiClient(base_url="https://api.example.com", auth=None, headers={}, timeout=5,
                       limit=RateLimit(None, "t"), errors=None, max_attempts=1, max_backoff=10, recipe="r.yaml",
                       auth_fix="check X")
    client.client = httpx.Client(transport=httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200)))
    with pytest.raises(SourceError, match=r"next page is on another host \(evil.example\)"):
        client.request("s", "GET", "https://evil.example/items?page=2")
    assert sent == []


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_seconds("3") == 3.0 and retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (retry_after_seconds(later) or 0) <= 31


@pytest.mark.parametrize("limits", [{"requests_per_second": "10"}, {"requests_per_second": 0},
                                    {"requests_per_second": 5, "burst_size": 1.5}, {"rps": 5}])
def test_bad_rate_limits_are_one_line(limits: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"^connectors/sources/x.yaml: rate_limits"):
        rate_limit("acme", "x", limits, "connectors/sources/x.yaml")


def test_one_bucket_per_tenant_and_connector() -> None:
    a = rate_limit("acme", "x", {"requests_per_second": 5}, None)
    b = rate_limit("acme", "x", {"requests_per_second": 5}, None)
    c = rate_limit("other", "x", {"requests_per_second": 5}, None)
    assert a.limiter is b.limiter and a.limiter is not c.limiter


def _client(handler: Any, **kwargs: Any) -> ApiClient:
    client = ApiClient(base_url="https://api.example.com/v2", auth=None, headers={}, timeout=5,
                       limit=RateLimit(None, "t"), errors=None, max_attempts=kwargs.get("attempts", 1),
                       max_backoff=10, recipe="connectors/sources/x.yaml", auth_fix="check X_TOKEN")
    client.client = httpx.Client(base_url="https://api.example.com/v2", transport=httpx.MockTransport(handler))
    return client


@pytest.mark.parametrize(("status", "kind", "message"), [
    (401, "InfrastructureError", "connectors/sources/x.yaml: the API refused the credentials: HTTP 401 on GET "
                                 "/v2/items (stream 's') (check X_TOKEN)"),
    (302, "SourceError", "stream 's': GET /v2/items answered HTTP 302, a redirect (not followed: is "
                         "connection.endpoint the API's base URL?)"),
    (404, "SourceError", "stream 's': GET /v2/items answered HTTP 404: no such thing"),
    (503, "SourceError", "stream 's': GET /v2/items failed after 1 attempts: HTTP 503 (the API keeps failing; "
                         "run again later, or raise api.max_attempts in connectors/sources/x.yaml)"),
])
def test_failures_are_one_line_with_the_path_never_the_query(status: int, kind: str, message: str) -> None:
    client = _client(lambda r: httpx.Response(status, json={"error": {"message": "no such thing"}}))
    with pytest.raises((SourceError, Exception)) as info:
        client.request("s", "GET", "/items", params={"api_key": "SECRET-123"})
    assert type(info.value).__name__ == kind and str(info.value) == message
