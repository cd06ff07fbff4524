"""Chat latency and throughput: single stack and cluster, side by side in one run (issue #7).

For each stack (the single-machine stack on SQLite, then the cluster: nginx,
2 Rasa servers on PostgreSQL + Redis, 2 action servers, 2 knowledge bases)
it measures, through the REST webhook:
- 1 user: p50 / p95 latency of a greeting turn and of a knowledge-base
  question turn (an answer from vetted guidance with its source);
- 20 concurrent users for a fixed time: turns/s sustained, p50 / p95 of
  each turn type, failed turns (non-200 or no reply), and lost turns (a
  user message the client sent that is not in the tracker store).

Each virtual user alternates greeting and question turns and starts a new
conversation every 10 turns, as people do.

Usage: python bench/chat_load.py [--runs 3] [--duration 45] [--out docs/benchmarks/scale_out_chat.md]
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import json
import os
import platform
import secrets as token_source
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from launcher.cluster import ClusterLayout, cluster_supervisor  # noqa: E402
from launcher.engines import ENGINE_SECRETS, create_databases, ensure_engines, stop_engines  # noqa: E402
from launcher.model import latest_model  # noqa: E402
from launcher.processes import Ports, base_environment, stack  # noqa: E402
from launcher.secrets_file import ensure_secrets  # noqa: E402
from launcher.supervisor import Supervisor  # noqa: E402

GREETINGS = ["你好", "您好", "hello", "在吗"]
NOTES = """
### Where a turn's time goes

CPU per turn, measured on the single stack one turn at a time (process CPU time over 60 turns):
a greeting costs Rasa 27 ms and the action server 1.3 ms (the language slot's custom mapping); a
knowledge-base question costs Rasa 38 ms, the action server 4.5 ms and the knowledge base 25 ms
(most of it embedding the question with multilingual-e5-small, one thread). Rasa's time is mostly
DIET and TED inference and the tracker store. Two findings:

- Rasa 3.6 checked every action server response with `jsonschema.validate`, which first checks the
  constant schema against the 2020-12 meta-schema: 26 ms per action call, over half of the Rasa
  server's CPU. `bot/action_validation.py` builds the validator once (1.3 ms, same verdicts, tested):
  a greeting turn went from 134 ms to 42 ms median at 1 user.
- One Rasa server is one process on one core: the single stack cannot reach 30 turns/s here, it
  tops out near 26-28; the cluster's two Rasa servers use both cores and reach 32-34 turns/s with
  every replica on the same 2 cores as PostgreSQL, nginx and the load generator. On more cores or
  machines, more replicas add throughput; this machine cannot show how far.
- The knowledge-base turn is about twice the greeting turn at 1 user (1.9-2.1 over the runs): the
  embedding alone is about 25 ms of a 75 ms turn.
"""
SOURCE_MARKS = ("来源：", "Source: ")
TURNS_PER_CONVERSATION = 10


def kb_questions(limit: int = 40) -> List[str]:
    """Questions from the knowledge base's development set that have a guidance topic."""
    path = ROOT / "knowledge_base" / "eval" / "dev_questions.tsv"
    rows = csv.reader((line for line in path.open(encoding="utf-8") if not line.startswith("#")), delimiter="\t")
    next(rows)
    return [q for q, _lang, topic in rows if topic not in ("URGENT", "OUT_OF_SCOPE")][:limit * 2]


@dataclasses.dataclass
class Turn:
    kind: str          # "greeting" or "kb"
    sender: str
    text: str
    seconds: float
    ok: bool
    sourced: bool      # a kb turn answered from guidance with its source


async def one_turn(session: aiohttp.ClientSession, url: str, kind: str, sender: str, text: str) -> Turn:
    t0 = time.perf_counter()
    try:
        async with session.post(url, json={"sender": sender, "message": text}) as resp:
            body = await resp.json(content_type=None) if resp.status == 200 else None
            ok = resp.status == 200 and bool(body)
    except (aiohttp.ClientError, asyncio.TimeoutError):
        body, ok = None, False
    seconds = time.perf_counter() - t0
    texts = " ".join(m.get("text") or "" for m in body or [])
    return Turn(kind, sender, text, seconds, ok, any(mark in texts for mark in SOURCE_MARKS))


async def select_questions(url: str, candidates: List[str], want: int = 12) -> List[str]:
    """Keep questions the assistant answers from guidance (not a clarifying question)."""
    chosen = []
    async with aiohttp.ClientSession() as session:
        for i, q in enumerate(candidates):
            turn = await one_turn(session, url, "kb", f"probe-{i}", q)
            if turn.sourced:
                chosen.append(q)
            if len(chosen) == want:
                break
    return chosen


async def single_user(url: str, questions: List[str], rounds: int) -> List[Turn]:
    turns: List[Turn] = []
    async with aiohttp.ClientSession() as session:
        for i in range(rounds):
            sender = f"solo-{token_source.token_hex(4)}"
            turns.append(await one_turn(session, url, "greeting", sender, GREETINGS[i % len(GREETINGS)]))
            turns.append(await one_turn(session, url, "kb", sender, questions[i % len(questions)]))
    return turns


async def many_users(url: str, questions: List[str], users: int, duration: float) -> Tuple[List[Turn], float]:
    """`users` virtual users chat back to back for `duration` seconds."""
    turns: List[Turn] = []
    stop_at = time.perf_counter() + duration
    timeout = aiohttp.ClientTimeout(total=120)

    async def user(u: int, session: aiohttp.ClientSession) -> None:
        n = 0
        sender = f"load-{u}-{token_source.token_hex(3)}"
        while time.perf_counter() < stop_at:
            if n and n % TURNS_PER_CONVERSATION == 0:
                sender = f"load-{u}-{token_source.token_hex(3)}"
            if n % 2 == 0:
                turns.append(await one_turn(session, url, "greeting", sender, GREETINGS[(u + n) % len(GREETINGS)]))
            else:
                turns.append(await one_turn(session, url, "kb", sender, questions[(u + n) % len(questions)]))
            n += 1

    t0 = time.perf_counter()
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=users * 2)) as session:
        await asyncio.gather(*(user(u, session) for u in range(users)))
    return turns, time.perf_counter() - t0


def percentile(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summarize(turns: List[Turn], elapsed: float, lost: int) -> Dict[str, float]:
    by = {k: [t.seconds * 1000 for t in turns if t.kind == k and t.ok] for k in ("greeting", "kb")}
    return {
        "turns": len(turns),
        "turns_per_s": len(turns) / elapsed if elapsed else 0.0,
        "greeting_p50": percentile(by["greeting"], 0.5), "greeting_p95": percentile(by["greeting"], 0.95),
        "kb_p50": percentile(by["kb"], 0.5), "kb_p95": percentile(by["kb"], 0.95),
        "failed": sum(1 for t in turns if not t.ok),
        "unsourced_kb": sum(1 for t in turns if t.kind == "kb" and t.ok and not t.sourced),
        "lost": lost,
    }


def lost_turns(turns: List[Turn], stored: Callable[[str], List[str]]) -> int:
    """Messages answered to the client but missing from the tracker store."""
    by_sender: Dict[str, Counter] = {}
    for t in turns:
        if t.ok:
            by_sender.setdefault(t.sender, Counter())[t.text] += 1
    return sum(sum((sent - Counter(stored(sender))).values()) for sender, sent in by_sender.items())


def sqlite_user_texts(path: Path) -> Callable[[str], List[str]]:
    def read(sender: str) -> List[str]:
        with sqlite3.connect(path) as db:
            rows = db.execute("SELECT data FROM events WHERE sender_id = ? AND type_name = 'user'", (sender,))
            return [json.loads(r[0]).get("text") for r in rows]
    return read


def postgres_user_texts(url: str) -> Callable[[str], List[str]]:
    import psycopg2

    def read(sender: str) -> List[str]:
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute("SELECT data FROM events WHERE sender_id = %s AND type_name = 'user'", (sender,))
            return [json.loads(r[0]).get("text") for r in cur.fetchall()]
    return read


def measure(url: str, stored: Callable[[str], List[str]], runs: int, duration: float, users: int,
            log: Callable[[str], None]) -> Dict[str, Dict[str, float]]:
    """Median over runs of the 1-user and the N-user figures."""
    questions = asyncio.run(select_questions(url, kb_questions()))
    log(f"  {len(questions)} guidance questions answered with a source")
    asyncio.run(single_user(url, questions, 5))  # warm-up: models, connections, caches
    one, many = [], []
    for run in range(runs):
        turns = asyncio.run(single_user(url, questions, 30))
        one.append(summarize(turns, sum(t.seconds for t in turns), lost_turns(turns, stored)))
        turns, elapsed = asyncio.run(many_users(url, questions, users, duration))
        many.append(summarize(turns, elapsed, lost_turns(turns, stored)))
        log(f"  run {run + 1}: 1 user kb p95 {one[-1]['kb_p95']:.0f} ms, greeting p95 {one[-1]['greeting_p95']:.0f} ms;"
            f" {users} users {many[-1]['turns_per_s']:.1f} turns/s, failed {many[-1]['failed']},"
            f" lost {many[-1]['lost']}")
    median = lambda rows: {k: statistics.median(r[k] for r in rows) for k in rows[0]}  # noqa: E731
    total = lambda rows, k: sum(r[k] for r in rows)  # noqa: E731
    result = {"1": median(one), str(users): median(many)}
    for key in ("failed", "lost", "unsourced_kb"):   # errors are summed over runs, not medians
        result["1"][key] = total(one, key)
        result[str(users)][key] = total(many, key)
    return result


def kill_during_load(supervisor: Supervisor, url: str, stored: Callable[[str], List[str]], users: int,
                     log, before: float = 10.0, duration: float = 60.0) -> Dict[str, float]:
    """SIGKILL one Rasa server `before` s into a load, start it again at once; count what suffered."""
    import threading

    questions = asyncio.run(select_questions(url, kb_questions()))
    box: Dict[str, object] = {}
    loader = threading.Thread(target=lambda: box.update(
        zip(("turns", "elapsed"), asyncio.run(many_users(url, questions, users, duration)))))
    loader.start()
    time.sleep(before)
    t_kill = time.perf_counter()
    supervisor.kill("rasa-1")
    supervisor.start_one(supervisor.spec("rasa-1"))   # back when healthy again
    restart_s = time.perf_counter() - t_kill
    loader.join()
    turns: List[Turn] = box["turns"]  # type: ignore[assignment]
    result = summarize(turns, box["elapsed"], lost_turns(turns, stored))  # type: ignore[arg-type]
    result["restart_s"] = restart_s
    result["max_ms"] = max(t.seconds for t in turns) * 1000
    log(f"  fault: rasa-1 killed and back in {restart_s:.0f} s; {result['turns']} turns,"
        f" failed {result['failed']}, lost {result['lost']}, slowest {result['max_ms']:.0f} ms")
    return result


def bad_bodies(front: str, log, rounds: int = 25) -> Dict[str, object]:
    """Malformed and oversized bodies to every chat webhook through the front door."""
    bodies = [
        (b"{not json", "application/json"), (b"[1, 2, 3]", "application/json"),
        (b'{"sender": 5, "message": "hi"}', "application/json"), (b'{"sender": "", "message": "hi"}', "application/json"),
        (b'{"sender": "a", "message": 7}', "application/json"), (b"\xff\xfe\x00", "application/octet-stream"),
        (b"", "application/json"), (json.dumps({"sender": "big", "message": "长" * 40000}).encode(), "application/json"),
        (b"x" * 200_000, "text/plain"), (b"CallSid=&From=&Digits=%%%", "application/x-www-form-urlencoded"),
    ]
    urls = [f"{front}/webhooks/{n}/webhook" for n in ("rest", "sms", "voice_gateway", "twilio_voice")]
    statuses: Counter = Counter()

    async def go() -> None:
        async with aiohttp.ClientSession() as session:
            async def one(u: str, body: bytes, ctype: str) -> None:
                try:
                    async with session.post(u, data=body, headers={"Content-Type": ctype}) as resp:
                        statuses[resp.status] += 1
                except aiohttp.ClientError:
                    statuses["connection error"] += 1
            for _ in range(rounds):
                await asyncio.gather(*(one(u, b, c) for u in urls for b, c in bodies))

    asyncio.run(go())
    total = sum(statuses.values())
    bad = sum(v for k, v in statuses.items() if not (isinstance(k, int) and 400 <= k < 500))
    log(f"  bad input: {total} requests, statuses {dict(statuses)}")
    return {"requests": total, "not_4xx": bad, "statuses": dict(sorted((str(k), v) for k, v in statuses.items()))}


def run_single(model: Path, runs: int, duration: float, users: int, log) -> Dict[str, Dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        var_dir = Path(tmp)
        ports = Ports.free()
        secrets = {"RASA_AUTH_TOKEN": token_source.token_hex(16), "REMINDERS_API_TOKEN": token_source.token_hex(16)}
        specs = [s for s in stack(model, ports, secrets, var_dir) if s.name in ("actions", "knowledge_base", "rasa")]
        with Supervisor(specs, base_environment(ports, secrets, var_dir), var_dir / "log"):
            url = f"http://127.0.0.1:{ports.rasa}/webhooks/rest/webhook"
            return measure(url, sqlite_user_texts(var_dir / "rasa_tracker.db"), runs, duration, users, log)


def run_cluster(model: Path, runs: int, duration: float, users: int, log) -> Dict[str, Dict[str, float]]:
    secrets = ensure_secrets(ROOT / "var" / "secrets.env", ENGINE_SECRETS)
    engines = ensure_engines(ROOT / "var", secrets)
    name = f"bench_rasa_{token_source.token_hex(3)}"
    create_databases(engines.postgres, (name, name.replace("rasa", "reminders")))
    scratch = dataclasses.replace(engines, rasa_db=name, reminders_db=name.replace("rasa", "reminders"), started=[])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            var_dir = Path(tmp)
            layout = ClusterLayout.free(replicas=2)
            all_secrets = {**secrets, "RASA_AUTH_TOKEN": token_source.token_hex(16),
                           "REMINDERS_API_TOKEN": token_source.token_hex(16)}
            supervisor = cluster_supervisor(model, layout, all_secrets, var_dir, scratch)
            # The reminders workers and the hotline are not part of a chat turn: leave them out.
            supervisor.specs = [s for s in supervisor.specs if not s.name.startswith(("reminders", "hotline"))]
            with supervisor:
                url = f"http://127.0.0.1:{layout.front.rasa}/webhooks/rest/webhook"
                stored = postgres_user_texts(engines.postgres.url(name))
                result = measure(url, stored, runs, duration, users, log)
                result["fault"] = kill_during_load(supervisor, url, stored, users, log)
                result["bad_input"] = bad_bodies(f"http://127.0.0.1:{layout.front.rasa}", log)
                return result
    finally:
        stop_engines(engines)


def report(single: Dict, cluster: Dict, users: int, runs: int, duration: float, model: Path) -> str:
    u = str(users)
    rows = [
        ("greeting turn p50, 1 user (ms)", "1", "greeting_p50"), ("greeting turn p95, 1 user (ms)", "1", "greeting_p95"),
        ("knowledge-base turn p50, 1 user (ms)", "1", "kb_p50"), ("knowledge-base turn p95, 1 user (ms)", "1", "kb_p95"),
        (f"greeting turn p50, {users} users (ms)", u, "greeting_p50"),
        (f"greeting turn p95, {users} users (ms)", u, "greeting_p95"),
        (f"knowledge-base turn p50, {users} users (ms)", u, "kb_p50"),
        (f"knowledge-base turn p95, {users} users (ms)", u, "kb_p95"),
        (f"turns/s sustained, {users} users", u, "turns_per_s"),
        (f"failed turns, {users} users (all runs)", u, "failed"),
        (f"lost turns, {users} users (all runs)", u, "lost"),
        ("knowledge-base turns without a source (all runs)", u, "unsourced_kb"),
    ]
    fmt = lambda v: f"{v:.1f}" if isinstance(v, float) and not float(v).is_integer() else f"{v:.0f}"  # noqa: E731
    lines = [
        "## Scale-out: chat latency and throughput",
        "",
        f"Script: `bench/chat_load.py`. Machine: 2 cores ({platform.processor() or platform.machine()}), no GPU;"
        f" {time.strftime('%Y-%m-%d')}; model {model.name}. Load average at the end: "
        + ", ".join(f"{x:.1f}" for x in os.getloadavg()) + ".",
        f"Through the REST webhook; the load generator runs on the same 2 cores. Median of {runs} runs"
        f" ({duration:.0f} s of load at {users} users per run); failed and lost turns are totals over all runs.",
        "Single stack: Rasa + action server + knowledge base, SQLite tracker store. Cluster: nginx routing by"
        " sender, 2 Rasa servers (PostgreSQL tracker store, Redis lock store), 2 action servers,"
        " 2 knowledge-base services.",
        "",
        "| figure | single stack | cluster |",
        "|---|---|---|",
    ]
    lines += [f"| {label} | {fmt(single[k1][k2])} | {fmt(cluster[k1][k2])} |" for label, k1, k2 in rows]
    checks = []
    for name, r in (("single stack", single), ("cluster", cluster)):
        ratio = r["1"]["kb_p95"] / r["1"]["greeting_p95"]
        checks.append(f"{name}: knowledge-base p95 / greeting p95 at 1 user = {ratio:.2f} (target ≤ 2);"
                      f" {r[u]['turns_per_s']:.1f} turns/s at {users} users (target ≥ 30),"
                      f" {r[u]['failed']:.0f} failed, {r[u]['lost']:.0f} lost.")
    lines += ["", "Targets:", ""] + [f"- {c}" for c in checks]
    fault, bad = cluster["fault"], cluster["bad_input"]
    lines += [
        "",
        "### Fault: a Rasa server killed during the chat load",
        "",
        f"{users} users chatting for 60 s against the cluster; 10 s in, `rasa-1` gets SIGKILL and is started"
        f" again at once (healthy {fault['restart_s']:.0f} s later). Its conversations move to `rasa-2` (their"
        " history is in PostgreSQL), a turn cut mid-way is retried once by nginx, and they move back when"
        " `rasa-1` is up.",
        "",
        "| turns | failed | lost (answered, not in PostgreSQL) | turns/s | greeting p95 ms | knowledge-base p95 ms"
        " | slowest turn ms |",
        "|---|---|---|---|---|---|---|",
        f"| {fault['turns']:.0f} | {fault['failed']:.0f} | {fault['lost']:.0f} | {fault['turns_per_s']:.1f}"
        f" | {fault['greeting_p95']:.0f} | {fault['kb_p95']:.0f} | {fault['max_ms']:.0f} |",
        "",
        "The slowest turns are those of conversations whose lock the dead server held: they wait for the"
        " lock to expire (`TICKET_LOCK_LIFETIME`, 20 s).",
        "",
        "### Bad input at volume: chat webhooks",
        "",
        f"{bad['requests']} malformed or oversized bodies (bad JSON, arrays, wrong types, empty, binary,"
        " 80 KB and 200 KB bodies, broken forms) to the REST, SMS, voice gateway and Twilio webhooks through"
        f" the front door: statuses {bad['statuses']}; not a clean 4xx: {bad['not_4xx']}.",
    ]
    lines += NOTES.rstrip("\n").split("\n")
    lines += ["", "Reproduce: `.venv/bin/python bench/chat_load.py` (needs PostgreSQL and Redis: `make engines-up`)."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=45.0)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "scale_out_chat.md"))
    parser.add_argument("--only", choices=["single", "cluster"], help="measure one stack (no report written)")
    args = parser.parse_args()
    model = latest_model()
    if model is None:
        print("No trained model: run `make train` first.", file=sys.stderr)
        return 1
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    results = {}
    for name, runner in (("single", run_single), ("cluster", run_cluster)):
        if args.only and args.only != name:
            continue
        log(f"{name}:")
        results[name] = runner(model, args.runs, args.duration, args.users, log)
        log(json.dumps(results[name], indent=1))
    if args.only:
        return 0
    text = report(results["single"], results["cluster"], args.users, args.runs, args.duration, model)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
