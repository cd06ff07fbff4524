#!/usr/bin/env python
"""Bad input at volume (issue #7): fuzz the reminders API from its OpenAPI document, at volume.

    .venv/bin/python bench/fuzz_reminders.py                   # ~5,000 requests, writes docs/benchmarks/fuzz.md
                                                               # (and as many against the code before the fixes)
    .venv/bin/python bench/fuzz_reminders.py --examples 14 --before '' --no-write    # test-sized, no baseline

Runs the harness of tests/reminders/test_fuzz_openapi.py (``fuzz_api``: every operation, positive and
negative schemathesis data, with and without the token, real ids, hostile values) against the real app
on a loopback port with a fresh SQLite file, with more examples per operation. Besides
``not_a_server_error`` it runs schemathesis' conformance checks (status code, content type, response
schema) so the document's honesty is measured too. With ``--before REV`` the same harness also runs, in a
subprocess, against ``reminders/`` as it was at REV (before the fixes), for the "found" column; with
``--postgres`` once more on a scratch database of the scale-out PostgreSQL (``make engines-up``'s, else
started here like the tests' ``engines`` fixture does, and stopped after).
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import json
import os
import platform
import re
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "benchmarks" / "fuzz.md"
BEFORE_REV = "ae3bef1"      # schemathesis added, no fix yet

# (what broke, commit subject) - the commits of issue #7; hashes are looked up in git log at run time
FIXES: List[Tuple[str, str]] = [
    ("GET /reminders?limit=-2**70 was a 500 (SQLite overflow); a negative limit returned every row on SQLite "
     "and was a 500 on PostgreSQL",
     "reminders: GET /reminders rejects limit < 1 (400 invalid_limit) instead of passing it to SQL "
     "(negative = all rows; below -2**63 a 500)"),
    ("unpaired surrogates (`\\ud800`) in any JSON string were 500s (UTF-8 encoding in SQLite and in the reply); "
     "NUL would be on PostgreSQL; 100k nested brackets hit RecursionError; \"doses\": 5 hit a TypeError",
     "reminders: JSON bodies nested too deeply, unpaired surrogates, NUL (also in the URL) and non-list doses "
     "are 400s, not 500s"),
    ("a bearer token or X-Signature with bytes that are not UTF-8 was a 500 on every authenticated route",
     "reminders: Authorization / X-Signature headers that are not UTF-8 get 401 instead of a 500 from the "
     "constant-time comparison"),
    ("POST /activities starts_at 9999-12-31T23:59:59-10:00 overflowed datetime (500)",
     "reminders: POST /activities with a starts_at whose offset leaves datetime's range is 400 "
     "invalid_datetime, not a 500"),
    ("valid RFC 3339 starts_at (\"…:41.9Z\", lower-case t/z) was rejected with 400 (document: date-time)",
     "reminders: POST /activities takes any RFC 3339 starts_at as documented (fractions of 1-9 digits, "
     "lower-case t/z), not only what Python 3.10's fromisoformat parses"),
    ("an inbound SMS with a long message_id overflowed its reply's VARCHAR(160) key on PostgreSQL (500, reply lost)",
     "reminders: inbound SMS with a message_id over 100 characters keys its reply by a digest (the key overflowed "
     "VARCHAR(160) on PostgreSQL: 500, reply lost)"),
    ("the document left out statuses the API returns (200 re-recorded dose, 422 upcoming/opt-out, 400 "
     "calendar, 413) and the limits it enforces",
     "reminders: OpenAPI document says what the API checks: 200 for a re-recorded dose, 422 on upcoming and "
     "opt-out, 400 on the calendar, 413 on JSON bodies, GET /reminders limit >= 1, non-empty and "
     "length-capped strings, HH:MM quiet hours, item_id or vaccine+dose, sender_id or phone, chat or phone"),
]


def _setup_path(code_dir: Optional[str]) -> None:
    """Import ``reminders`` from *code_dir* (an old revision) when given, the tests from this checkout."""
    sys.path.insert(0, str(ROOT))
    if code_dir:
        sys.path.insert(0, code_dir)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")


async def _fuzz(examples: int, seed: int, conformance: bool, database_url: Optional[str] = None) -> Dict[str, Any]:
    """Start the app on a loopback port (fresh SQLite file unless *database_url*), fuzz it, check /health."""
    from aiohttp.test_utils import TestClient, TestServer
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                                   status_code_conformance)

    from reminders.api import create_app
    from reminders.clock import FakeClock
    from reminders.config import Config
    from tests.reminders.conftest import SECRET, T0, TOKEN
    from tests.reminders.test_fuzz_openapi import fuzz_api, make_anchors

    checks = [not_a_server_error]
    if conformance:
        checks += [status_code_conformance, content_type_conformance, response_schema_conformance]
    with tempfile.TemporaryDirectory() as tmp:
        # the same settings as the tests' make_client (no sweep: the API is under test, not delivery)
        cfg = Config.from_env(env={}, database_url=database_url or f"sqlite:///{tmp}/reminders.db", api_token=TOKEN,
                              sms_webhook_secret=SECRET, sweep_enabled=False, http_timeout=2.0)
        app = create_app(cfg, clock=FakeClock(T0))
        served: collections.Counter = collections.Counter()

        async def count(_request, response) -> None:      # server-side count, to cross-check the client's
            served[response.status] += 1

        app.on_response_prepare.append(count)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        try:
            anchors = await make_anchors(client)
            served.clear()
            started = time.perf_counter()
            report = await asyncio.to_thread(fuzz_api, str(client.make_url("")).rstrip("/"), TOKEN, anchors,
                                             examples=examples, seed_value=seed, sms_secret=SECRET,
                                             checks=checks, storage_dir=Path(tmp) / "hypothesis")
            wall = time.perf_counter() - started
            served_total = sum(served.values())
            health = await client.get("/health")
            healthy = health.status == 200 and (await health.json()).get("db") is True
        finally:
            await client.close()
    kinds = collections.Counter(f.split(" (", 1)[1].split(")", 1)[0] for f in report.failures)
    # failure lines read "<METHOD> <path> [<pass>] -> <status> (<check titles>): <curl>"
    five_xx = [f for f in report.failures if "] -> 5" in f]
    by_op = collections.Counter(f.split(" [", 1)[0] for f in five_xx)
    by_pass = collections.Counter(f.split(" [", 1)[1].split("]", 1)[0] for f in five_xx)
    return {"operations": report.operations, "requests": report.requests, "served": served_total,
            "statuses": {str(k): v for k, v in sorted(report.statuses.items())},
            "server_errors": sum(v for k, v in report.statuses.items() if k >= 500),
            "server_errors_by_operation": dict(by_op.most_common()),
            "server_errors_by_pass": dict(by_pass.most_common()),
            "failures_by_check": dict(kinds.most_common()), "failure_examples": report.failures[:5],
            "skipped": report.skipped, "wall_s": wall, "healthy": healthy}


@contextlib.contextmanager
def _postgres_database() -> Iterator[str]:
    """URL of a scratch database on the scale-out PostgreSQL; dropped (and engines started here stopped) after."""
    import psycopg2

    from launcher.engines import ENGINE_SECRETS, create_databases, ensure_engines, missing_engines, stop_engines
    from launcher.secrets_file import ensure_secrets

    missing = missing_engines()
    if missing:
        raise SystemExit(f"--postgres needs {' and '.join(missing)} (or CLUSTER_POSTGRES_URL / CLUSTER_REDIS_URL)")
    var_dir = ROOT / "var"
    found = ensure_engines(var_dir, ensure_secrets(var_dir / "secrets.env", ENGINE_SECRETS))
    pg, name = found.postgres, f"reminders_fuzz_{secrets.token_hex(4)}"
    create_databases(pg, (name,))
    try:
        yield pg.url(name)
    finally:
        conn = psycopg2.connect(host=pg.host, port=pg.port, user=pg.user, password=pg.password, dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()
        stop_engines(found)


def _before(rev: str, examples: int, seed: int, database_url: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """Run this script on ``reminders/`` as of *rev* in a subprocess; None if the revision is unknown."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", rev, "reminders"], cwd=ROOT, capture_output=True)
        if archive.returncode != 0:
            print(f"--before {rev}: {archive.stderr.decode().strip()}; skipped", file=sys.stderr)
            return None
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        out = Path(tmp) / "before.json"
        # the old code logs a traceback per 500 (to stderr): what raised is read from their last lines
        run = subprocess.run([sys.executable, __file__, "--code-dir", tmp, "--examples", str(examples),
                              "--seed", str(seed), "--json", str(out), "--before", "", "--no-write",
                              *(["--database-url", database_url] if database_url else [])], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace")
        if not out.exists():
            raise SystemExit(f"--before {rev} failed:\n{run.stderr[-3000:]}")
        res = json.loads(out.read_text())
        res["exceptions"] = dict(_exceptions(run.stderr).most_common())
        return res


def _exceptions(log: str) -> collections.Counter:
    """Count the exceptions at the end of logged tracebacks, positions and object ids blanked out."""
    found: collections.Counter = collections.Counter()
    for line in log.splitlines():
        m = re.match(r"^([A-Za-z_.]*(?:Error|Exception)): (.*)$", line)
        if m:
            found[f"{m.group(1)}: {re.sub(r'position [0-9-]+', 'position N', m.group(2))[:110]}"] += 1
    return found


def _commit(subject: str) -> str:
    """Short hash of the commit with exactly this subject, or "" if not in this history."""
    log = subprocess.run(["git", "log", "--format=%h\t%s"], cwd=ROOT, capture_output=True, text=True).stdout
    return next((h for h, s in (line.split("\t", 1) for line in log.splitlines() if "\t" in line) if s == subject), "")


def _versions() -> Dict[str, str]:
    import hypothesis
    import schemathesis
    return {"schemathesis": schemathesis.__version__, "hypothesis": hypothesis.__version__,
            "python": platform.python_version()}


def render(res: Dict[str, Any], befores: List[Tuple[str, Dict[str, Any]]], pg: Optional[Dict[str, Any]],
           args: argparse.Namespace) -> str:
    """The docs/benchmarks/fuzz.md section."""
    v = _versions()
    hist = ", ".join(f"{k}: {n:,}" for k, n in res["statuses"].items())
    checks = ", ".join(f"{k}: {n}" for k, n in res["failures_by_check"].items()) or "none"
    lines = [
        "## Bad input at volume: reminders API fuzzing",
        "",
        "Issue #7: the reminders API must survive at least 1,000 generated requests with no 5xx and no crash.",
        "",
        f"    .venv/bin/python bench/fuzz_reminders.py --examples {args.examples} --seed {args.seed}"
        + (f" --before {args.before}" if args.before else "") + (" --postgres" if args.postgres else ""),
        "",
        f"- Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} (UTC); machine: 2 cores, no GPU "
        f"(`nproc` {os.cpu_count()}), Python {v['python']}; schemathesis {v['schemathesis']}, "
        f"hypothesis {v['hypothesis']}, seed {args.seed}, no example database.",
        "- Harness: `fuzz_api` of `tests/reminders/test_fuzz_openapi.py` (the test runs it with 14 examples, "
        "about 1,500 requests). The real app (`create_app`, fresh SQLite file, FakeClock) on a loopback port; "
        "schema loaded from its `/openapi.json`; for every operation schemathesis generates positive and "
        "negative cases with the bearer token, the same again with path and body ids of a real family "
        "(past the 404s), positive cases with hostile values spliced in (NUL, unpaired surrogates, ±2^63, "
        "10^30, a token byte that is not UTF-8) and a few without the token; inbound-SMS bodies are signed "
        "like the gateway signs them.",
        "",
        "| figure | result |",
        "|---|---|",
        f"| operations fuzzed | {res['operations']} of 23 documented (schemathesis skips `GET /openapi.json`, "
        "the document itself, which it downloads) |",
        f"| requests generated | {res['requests']:,} (server-side count {res['served']:,}: the same plus "
        "the document download) |",
        "| status codes (the requests repeat exactly for a seed; a few statuses, e.g. 201 vs 422, moved by "
        f"up to 4 between runs) | {hist} |",
        f"| 5xx | **{res['server_errors']}** |",
        f"| `/health` afterwards | {'200, db ok' if res['healthy'] else '**FAILED**'} |",
        f"| conformance failures (status code, content type, response schema) | {checks} |",
        f"| wall time | {res['wall_s']:.0f} s ({res['requests'] / res['wall_s']:.0f} requests/s, "
        "generation included, one client thread) |",
    ]
    if pg:
        lines.append(f"| same run on PostgreSQL (`--postgres`, scratch database) | {pg['requests']:,} requests, "
                     f"**{pg['server_errors']}** 5xx, conformance failures: "
                     f"{', '.join(f'{k}: {n}' for k, n in pg['failures_by_check'].items()) or 'none'}, "
                     f"`/health` {'ok' if pg['healthy'] else '**FAILED**'}, {pg['wall_s']:.0f} s |")
    for where, before in befores:
        ops = before["server_errors_by_operation"]
        passes = ", ".join(f"{n} in the {p!r} pass" for p, n in before["server_errors_by_pass"].items())
        lines.append(f"| same run against `reminders/` at {args.before} (before the fixes){where} | "
                     f"{before['server_errors']:,} 5xx in {before['requests']:,} requests, on {len(ops)} "
                     f"operations ({passes}; most: {', '.join(list(ops)[:3])}) |")
        raised = "; ".join(f"{n} x `{exc}`" for exc, n in before.get("exceptions", {}).items())
        lines.append(f"| what the old code raised{where} | {raised or '-'} |")
    lines += ["", "Found and fixed (regression tests in `tests/reminders/test_api.py`):", ""]
    for what, subject in FIXES:
        h = _commit(subject)
        lines.append(f"- {what}: {'`' + h + '` ' if h else ''}\"{subject}\"")
    lines += [
        "",
        "How they were found: the fuzzer, against the old code (rows above), hit the token that is not "
        "UTF-8, unpaired surrogates, the limit beyond 64 bits and, on PostgreSQL, NUL and the negative LIMIT "
        "(plain schemathesis data is enough for that one); the first `--postgres` run of the fixed code hit the "
        "long message_id. The datetime overflow, the deep nesting and "
        "`\"doses\": 5` came from reviewing the same input classes by hand, and the document fixes from "
        "schemathesis' conformance checks (`positive_data_acceptance`, `status_code_conformance`) while triaging.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=49, help="examples per operation and pass (49: ~5,000 requests)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--before", default=BEFORE_REV, help="git revision to fuzz for comparison ('' = skip)")
    ap.add_argument("--postgres", action="store_true", help="also fuzz the app on a scratch PostgreSQL database")
    ap.add_argument("--code-dir", help=argparse.SUPPRESS)      # internal: import reminders/ from here
    ap.add_argument("--database-url", help=argparse.SUPPRESS)  # internal: the --before run on PostgreSQL
    ap.add_argument("--json", help="also write the raw figures here")
    ap.add_argument("--no-write", action="store_true", help="do not write docs/benchmarks/fuzz.md")
    args = ap.parse_args()
    _setup_path(args.code_dir)
    res = asyncio.run(_fuzz(args.examples, args.seed, conformance=not args.code_dir, database_url=args.database_url))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    if args.code_dir:
        return
    pg, befores = None, []
    if args.before:
        before = _before(args.before, args.examples, args.seed)
        befores += [("", before)] if before else []
    if args.postgres:
        with _postgres_database() as url:
            pg = asyncio.run(_fuzz(args.examples, args.seed, conformance=True, database_url=url))
        if args.before:
            with _postgres_database() as url:
                before = _before(args.before, args.examples, args.seed, database_url=url)
            befores += [(", PostgreSQL", before)] if before else []
    text = render(res, befores, pg, args)
    print(text)
    if not args.no_write:
        OUT.write_text(text, encoding="utf-8")
        print(f"wrote {OUT.relative_to(ROOT)}")
    if any(r["server_errors"] or not r["healthy"] for r in (res, pg) if r):
        sys.exit(1)


if __name__ == "__main__":
    main()
