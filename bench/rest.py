#!/usr/bin/env python
"""dativo-ingest benchmark: the native REST engine's overhead per page, and its rate limiter's accuracy.

Run from the repository root:

    .venv/bin/python bench/rest.py                  # 2000 pages x 100 records, 3 runs; 200 requests at 20/s
    .venv/bin/python bench/rest.py --pages 500 --skip-limit
    .venv/bin/python bench/rest.py --json out.json  # also write machine-readable results

1. **Pages per second** (goal >= 500), beside the floor of any Python client (httpx GETs + ``orjson.loads``,
   interleaved with ours, so both see the same machine load): a local server (a process of its own, on
   127.0.0.1) answers at once with Stripe-like list pages of 100 customers (~53 KB of JSON each,
   ``starting_after`` / ``has_more`` paging); the engine reads them with the shipped Stripe recipe's ``api:``
   section and the asset ``assets/stripe/v1.0/customers.yaml``: HTTP (httpx, keep-alive), JSON decoding,
   records → Arrow typed by the asset, the client-side cursor filter and the checkpoints. The stage and the
   sink are not part of it (``bench/run.py`` measures those); ``--cli`` adds one end-to-end ``dativo_ingest
   run`` of the same pages into the embedded Iceberg catalog, for context.
2. **Rate limiter accuracy** (goal: 10 s +- 5 %): ``rate_limits: {requests_per_second: 20}`` (no burst), a sync of
   200 requests; the first request goes at once, so the ideal is 199 / 20 = 9.95 s.

Goals are reported, never asserted; the exit status is 1 only when a run read a wrong number of records.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GOAL_PAGES_PER_S = 500
GOAL_LIMIT_S, GOAL_LIMIT_TOLERANCE = 10.0, 0.05


def _customer(page: int, i: int) -> dict[str, Any]:
    return {"id": f"cus_{page:06d}{i:03d}", "object": "customer", "address": {"city": "Berlin", "country": "DE",
            "line1": "Unter den Linden 1", "postal_code": "10117", "state": None}, "balance": 0,
            "created": 1_700_000_000 + page * 100 + i, "currency": "eur", "default_source": None,
            "delinquent": False, "description": "a customer of the bench", "discount": None,
            "email": f"user{page}.{i}@example.com", "invoice_prefix": "ABCD1234",
            "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None},
            "livemode": False, "metadata": {"tier": "gold", "n": str(i)}, "name": f"User {page} {i}", "phone": None,
            "preferred_locales": ["en"], "shipping": None, "tax_exempt": "none"}


class PageServer:
    """Answers ``GET /v1/customers`` at once: page n after ``starting_after`` = the last id of page n-1."""

    def __init__(self, pages: int, per_page: int) -> None:
        self.pages = pages
        self.per_page = per_page
        body = {"object": "list", "url": "/v1/customers", "has_more": True,
                "data": [_customer(999_999, i) for i in range(per_page)]}
        self.template = json.dumps(body, separators=(",", ":")).encode()

    def body(self, page: int) -> bytes:
        out = self.template.replace(b"cus_999999", f"cus_{page:06d}".encode())
        if page >= self.pages - 1:
            out = out.replace(b'"has_more":true', b'"has_more":false')
        return out

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                query = parse_qs(urlsplit(self.path).query)
                after = query.get("starting_after", [""])[0]
                page = int(after[4:10]) + 1 if after else 0
                body = server.body(page)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> tuple[subprocess.Popen[str], str]:
        """Serve from a process of its own (a thread here would take the engine's GIL); (process, URL)."""
        proc = subprocess.Popen([sys.executable, __file__, "--serve", str(self.pages), str(self.per_page)],
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
        assert proc.stdout is not None
        return proc, proc.stdout.readline().strip()

    def serve(self) -> None:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        httpd.daemon_threads = True
        print(f"http://127.0.0.1:{httpd.server_address[1]}", flush=True)
        httpd.serve_forever()


def _stop(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=10)


def _source(url: str, rate_limits: dict[str, Any] | None, connector: str) -> Any:
    from dativo_ingest.config.loader import load_recipe
    from dativo_ingest.engines.native.rest.source import RestSource
    from dativo_ingest.engines.native.rest.spec import load_api_spec

    recipe = load_recipe(REPO / "connectors/sources/stripe.yaml")
    spec = load_api_spec((recipe.model_extra or {})["api"], "connectors/sources/stripe.yaml")
    connection = {"endpoint": url, "api_key": "sk_test_bench", "account_id": "", "timeout": 30,
                  "start_date": "2020-01-01T00:00:00Z"}
    return RestSource.build(spec, Path("connectors/sources/stripe.yaml"), connection, tenant_id="bench",
                            connector=connector, rate_limits=rate_limits, auth_fix="", redact=lambda t: t)


def _read(source: Any) -> tuple[int, int, float, float]:
    """(pages, records, wall seconds, CPU seconds of this process) of reading the customers stream whole."""
    from dativo_ingest.config.loader import load_asset
    from dativo_ingest.engines.native.rest.reader import ReadOptions, StreamReader
    from dativo_ingest.stream import Batch

    asset = load_asset(REPO / "assets/stripe/v1.0/customers.yaml")
    options = ReadOptions(streams=["customers"], incremental=True, lookback_seconds=0, resumable=True)
    started, cpu = time.perf_counter(), time.process_time()
    with source.client() as client:
        reader = StreamReader(source, client, "customers", [(f.name, f.type) for f in asset.fields], options)
        records = sum(m.data.num_rows for m in reader.read({}) if isinstance(m, Batch))
    return reader.pages, records, time.perf_counter() - started, time.process_time() - cpu


def _floor(url: str) -> tuple[int, float]:
    """(pages, seconds) of the least a client must do: httpx GETs on one connection + orjson.loads, paging by
    the last id — no records → Arrow, no state, no rate limiter, no retries."""
    import httpx
    import orjson

    started, pages, after = time.perf_counter(), 0, None
    with httpx.Client(base_url=url) as client:
        while True:
            params = {"limit": 100, **({"starting_after": after} if after else {})}
            body = orjson.loads(client.get("/v1/customers", params=params).content)
            pages += 1
            if not body["has_more"]:
                return pages, time.perf_counter() - started
            after = body["data"][-1]["id"]


def bench_pages(pages: int, per_page: int, repeat: int) -> dict[str, Any]:
    server = PageServer(pages, per_page)
    httpd, url = server.start()
    runs = []
    try:
        _read(_source(url, None, "bench-warmup"))  # imports, first connection
        for _ in range(repeat):
            floor_pages, floor_seconds = _floor(url)  # interleaved: the same machine load for both
            got_pages, records, seconds, cpu = _read(_source(url, None, "bench"))
            if (got_pages, records) != (pages, pages * per_page):
                raise SystemExit(f"wrong read: {got_pages} pages, {records} records")
            runs.append({"pages": got_pages, "records": records, "seconds": round(seconds, 3),
                         "pages_per_s": round(got_pages / seconds, 1), "records_per_s": round(records / seconds),
                         "cpu_ms_per_page": round(cpu / got_pages * 1000, 3),
                         "pages_per_cpu_s": round(got_pages / cpu, 1),
                         "floor_pages_per_s": round(floor_pages / floor_seconds, 1),
                         "of_floor": round((got_pages / seconds) / (floor_pages / floor_seconds), 3)})
    finally:
        _stop(httpd)
    best = max(r["pages_per_s"] for r in runs)
    per_cpu = max(r["pages_per_cpu_s"] for r in runs)
    return {"runs": runs, "best_pages_per_s": best, "best_pages_per_cpu_s": per_cpu,
            "goal_pages_per_s": GOAL_PAGES_PER_S, "goal_met": best >= GOAL_PAGES_PER_S}


def bench_cli(pages: int, per_page: int) -> dict[str, Any]:
    """One ``dativo_ingest run`` of the same pages into the embedded catalog (stage + Iceberg commit included)."""
    import shutil

    server = PageServer(pages, per_page)
    httpd, url = server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            project = Path(tmp) / "project"
            for folder in ("registry", "connectors", "assets"):
                shutil.copytree(REPO / folder, project / folder)
            (project / "jobs/bench").mkdir(parents=True)
            shutil.copy(REPO / "jobs/acme/stripe_customers_native.yaml", project / "jobs/bench/stripe.yaml")
            text = (project / "jobs/bench/stripe.yaml").read_text().replace("tenant_id: acme", "tenant_id: bench")
            (project / "jobs/bench/stripe.yaml").write_text(text)
            (project / "secrets/bench").mkdir(parents=True)
            (project / "secrets/bench/stripe.env").write_text(f"STRIPE_API_KEY=sk_test_bench\nSTRIPE_API_BASE={url}\n")
            recipe = project / "connectors/sources/stripe.yaml"
            recipe.write_text(recipe.read_text().replace("requests_per_second: 25", "requests_per_second: 100000")
                              .replace("burst_size: 25", "burst_size: 100000"))
            env = {k: v for k, v in os.environ.items() if not k.startswith("DATIVO_")}
            env["DATIVO_HOME"] = str(Path(tmp) / "home")
            started = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "dativo_ingest", "run", "--config", "jobs/bench/stripe.yaml"],
                                 cwd=project, env=env, capture_output=True, text=True, timeout=1800)
            seconds = time.perf_counter() - started
            if out.returncode != 0:
                raise SystemExit(f"dativo_ingest run failed: {out.stderr[-2000:]}")
            summary = json.loads(out.stdout.strip().splitlines()[-1])
            if summary["rows_written"] != pages * per_page:
                raise SystemExit(f"wrong run: {summary}")
    finally:
        _stop(httpd)
    return {"pages": pages, "rows": summary["rows_written"], "seconds": round(seconds, 2),
            "pages_per_s": round(pages / seconds, 1)}


def bench_limit(requests: int, rps: float) -> dict[str, Any]:
    server = PageServer(requests, 1)
    httpd, url = server.start()
    try:
        got_pages, _, seconds, _ = _read(_source(url, {"requests_per_second": rps}, f"bench-limit-{time.time()}"))
    finally:
        _stop(httpd)
    ideal = (requests - 1) / rps
    return {"requests": got_pages, "requests_per_second": rps, "seconds": round(seconds, 3),
            "ideal_seconds": round(ideal, 3), "error_vs_goal": round(seconds / GOAL_LIMIT_S - 1, 4),
            "goal_met": abs(seconds / GOAL_LIMIT_S - 1) <= GOAL_LIMIT_TOLERANCE}


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        PageServer(int(sys.argv[2]), int(sys.argv[3])).serve()
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--per-page", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-limit", action="store_true")
    parser.add_argument("--cli", action="store_true", help="also one end-to-end dativo_ingest run into Iceberg")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                           "load": os.getloadavg()[0]}}
    results["pages"] = pages = bench_pages(args.pages, args.per_page, args.repeat)
    print(f"pages/s with {args.per_page}-record pages: best {pages['best_pages_per_s']} "
          f"(goal >= {GOAL_PAGES_PER_S}: {'met' if pages['goal_met'] else 'NOT met'}); per CPU second of the "
          f"engine: {pages['best_pages_per_cpu_s']}; runs: "
          + ", ".join(f"{r['pages_per_s']} ({r['seconds']} s, {r['records_per_s']} records/s, "
                      f"{r['cpu_ms_per_page']} CPU ms/page; httpx+orjson floor {r['floor_pages_per_s']}, ours "
                      f"{r['of_floor']:.0%} of it)" for r in pages["runs"]))
    if args.cli:
        results["cli"] = cli = bench_cli(args.pages, args.per_page)
        print(f"end to end (dativo_ingest run into Iceberg): {cli['rows']} rows in {cli['seconds']} s, "
              f"{cli['pages_per_s']} pages/s")
    if not args.skip_limit:
        results["rate_limit"] = limit = bench_limit(200, 20)
        print(f"rate limit 20/s, 200 requests: {limit['seconds']} s (ideal {limit['ideal_seconds']} s; goal 10 s "
              f"+- 5 %: {'met' if limit['goal_met'] else 'NOT met'}, {limit['error_vs_goal']:+.2%})")
    print(f"machine: {results['machine']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
