#!/usr/bin/env python
"""Reminders benchmark: rows + one sweep job vs one APScheduler job per reminder.

    nice .venv/bin/python bench/reminders_bench.py                    # full: 100k children, 3 runs
    .venv/bin/python bench/reminders_bench.py --children 5000 --baseline-children 1000 --runs 1 --no-write

Per run:
1. scheduling: N children (birth dates spread over 0-6 years, 1-2 caregivers) -> compute the schedule,
   plan merged reminder rows and insert families/children/caregivers/reminders into a fresh SQLite
   file in batches (``Store.bulk_create``, the same planner the API uses);
2. dispatch: the sweep (claim batches with a lease, bounded concurrency, write outcomes) delivers every
   reminder due now to a loopback aiohttp sink running in a separate process (SMS: signed JSON
   webhook; chat: trigger_intent);
3. baseline, same machine and run: the same computation, then one APScheduler ``add_job`` per reminder
   (a) in a MemoryJobStore (not durable) and (b) in a SQLAlchemyJobStore on SQLite (durable, like our rows),
   for a subset of children; throughput extrapolated linearly (children/s).
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

UTC = dt.timezone.utc
SECRET = "bench-secret"


# ---------------------------------------------------------------------------- sink process
def run_sink(port: int, secret: str = SECRET) -> None:
    """A loopback stand-in for the SMS gateway and Rasa (run it in its own process: ``--sink PORT``).

    It behaves like a real gateway: SMS signatures are verified, and a request whose
    ``Idempotency-Key`` was already accepted is answered 200 but not counted as a new delivery.
    Every key is recorded, so callers can count duplicates and lost messages:

    - ``GET /stats``: totals (``n`` accepted deliveries, ``resent`` deduplicated re-sends, ``refused``,
      ``bad`` signatures, ``first``/``last`` acceptance time as ``time.time()``);
    - ``GET /_sink/keys``: per key ``[first accepted at, last request at, 2xx answers, refusals]``;
    - ``POST /_sink/control`` ``{"fail": {"/sms": 503}, "delay": 0.05}``: answer a path with an
      error status (a gateway outage) and/or delay every answer; ``{"fail": {}}`` ends the outage;
      ``{"reset": true}`` forgets every key and total.
    """
    from aiohttp import web
    from reminders.delivery import verify_signature
    count = {"n": 0, "bad": 0, "resent": 0, "refused": 0, "requests": 0, "first": None, "last": None}
    keys: Dict[str, list] = {}     # key -> [first accepted at, last request at, 2xx answers, refusals]
    state: Dict[str, object] = {"fail": {}, "delay": 0.0}
    unkeyed = iter(range(1 << 62))

    async def handle(request):
        raw = await request.read()
        now = time.time()
        count["requests"] += 1
        key = request.headers.get("Idempotency-Key") or f"unkeyed-{next(unkeyed)}"
        rec = keys.get(key)
        if rec is None:
            rec = keys[key] = [None, now, 0, 0]
        rec[1] = now
        if state["delay"]:
            await asyncio.sleep(state["delay"])
        status = state["fail"].get(request.path)
        if status:                                   # outage: refuse before looking at the request
            rec[3] += 1
            count["refused"] += 1
            return web.json_response({"error": "unavailable"}, status=status)
        if request.path == "/sms" and not verify_signature(raw, request.headers.get("X-Signature"), secret):
            count["bad"] += 1
            return web.json_response({"error": "signature"}, status=401)
        rec[2] += 1
        if rec[0] is not None:                       # a re-send: the gateway drops it (same key)
            count["resent"] += 1
            return web.json_response({"ok": True, "duplicate": True})
        rec[0] = now
        count["n"] += 1
        count["first"] = count["first"] or now
        count["last"] = now
        return web.json_response({"ok": True})

    async def stats(request):
        return web.json_response(count)

    async def dump_keys(request):
        return web.json_response(keys)

    async def control(request):
        body = await request.json()
        if body.get("reset"):                        # a new run: forget every key and total
            keys.clear()
            count.update(n=0, bad=0, resent=0, refused=0, requests=0, first=None, last=None)
        if "fail" in body:
            state["fail"] = {str(k): int(v) for k, v in (body["fail"] or {}).items()}
        if "delay" in body:
            state["delay"] = float(body["delay"])
        return web.json_response({"fail": state["fail"], "delay": state["delay"]})

    parent = os.getppid()

    async def watchdog(app):
        async def loop():
            while os.getppid() == parent:      # exit when the benchmark process is gone
                await asyncio.sleep(1)
            os._exit(0)
        app["watchdog"] = asyncio.ensure_future(loop())

    app = web.Application()
    app.on_startup.append(watchdog)
    app.router.add_get("/stats", stats)
    app.router.add_get("/_sink/keys", dump_keys)
    app.router.add_post("/_sink/control", control)       # before the catch-all delivery route
    app.router.add_post("/{tail:.*}", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=lambda *a: print("ready", flush=True), access_log=None)


class SinkProcess:
    """:func:`run_sink` in a child process (``with SinkProcess() as sink: ... sink.url``).

    A separate process so that the sink's CPU does not slow down the code under test's event loop.
    """

    def __init__(self, port: Optional[int] = None, secret: str = SECRET) -> None:
        self.port = port or free_port()
        self.secret = secret
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "SinkProcess":
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--sink", str(self.port),
                                      "--sink-secret", self.secret], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"sink did not start (got {line!r})")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def __enter__(self) -> "SinkProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _call(self, path: str, body: Optional[dict] = None):
        import urllib.request
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())

    def stats(self) -> Dict[str, object]:
        """Totals; see :func:`run_sink`."""
        return self._call("/stats")

    def keys(self) -> Dict[str, list]:
        """Per idempotency key: ``[first accepted at or None, last request at, 2xx answers, refusals]``."""
        return self._call("/_sink/keys")

    def control(self, **settings) -> Dict[str, object]:
        """``fail={"/sms": 503}`` starts an outage of that path, ``fail={}`` ends it; ``delay=seconds``;
        ``reset=True`` forgets every key and total."""
        return self._call("/_sink/control", settings)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------- workload
def families(n: int, today: dt.date, seed: int, start: int = 0):
    """*n* synthetic consented families (deterministic for (seed, start))."""
    rng = random.Random(seed * 1_000_003 + start)
    out = []
    for i in range(start, start + n):
        en = rng.random() < 0.1
        birth = today - dt.timedelta(days=rng.randrange(0, 6 * 365))
        cgs = [{"role": "mother", "chat_sender_id": f"s{seed}-{i}", "chat_channel": "wechat",
                "quiet_start": "00:00", "quiet_end": "00:00"}]
        if rng.random() < 0.5:
            cgs.append({"role": "grandma", "phone": f"139{i:08d}", "quiet_start": "00:00", "quiet_end": "00:00"})
        if rng.random() < 0.5:           # half of the families get SMS as their primary channel
            cgs[0]["preferred_channel"] = "sms"
            cgs[0]["phone"] = f"138{i:08d}"
        out.append({"consent": {"by": "bench", "text_version": "bench"},
                    "child": {"nickname": f"c{i}", "birth_date": birth, "language": "en" if en else "zh",
                              "timezone": "America/New_York" if en else "Asia/Shanghai", "region": "US" if en else "CN"},
                    "caregivers": cgs})
    return out


def cpu_s() -> float:
    """CPU seconds (user+sys) of this process and its finished children."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def loadavg() -> float:
    with open("/proc/loadavg") as fh:
        return float(fh.read().split()[0])


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child_rss_mb() -> float:
    """Peak RSS of the largest finished child process (plan / sweep workers)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


_WORKER_STORE = None


def _init_plan_worker(db_url: str) -> None:
    global _WORKER_STORE
    from reminders.store import Store
    _WORKER_STORE = Store(db_url, send_time=dt.time(0, 0))


def _plan_chunk(start: int, count: int, seed: int, now: dt.datetime) -> int:
    """Generate, plan and insert one chunk of families (runs in a worker process)."""
    fams = families(count, now.date(), seed, start)
    return _WORKER_STORE.bulk_create(fams, now)


def populate(db_url: str, n: int, seed: int, now: dt.datetime, batch: int, workers: int = 0):
    """Create the schema at *db_url* and schedule *n* synthetic children (:func:`families`) through
    ``Store.bulk_create``; returns ``(store, seconds, reminder rows)``.

    With *workers* > 0 the batches run in that many processes, each computing/planning its batch outside
    any transaction and inserting it in one short transaction (on SQLite one writer at a time: the others
    wait on the lock, ``busy_timeout`` 30 s; PostgreSQL takes the inserts concurrently).
    """
    from concurrent.futures import ProcessPoolExecutor
    from reminders.store import Store
    store = Store(db_url, send_time=dt.time(0, 0))   # creates the schema
    starts = list(range(0, n, batch))
    t0 = time.perf_counter()
    rows = 0
    if workers <= 0:
        for st in starts:
            rows += store.bulk_create(families(min(batch, n - st), now.date(), seed, st), now)
    else:
        with ProcessPoolExecutor(workers, initializer=_init_plan_worker, initargs=(db_url,)) as ex:
            futs = [ex.submit(_plan_chunk, st, min(batch, n - st), seed, now) for st in starts]
            rows = sum(f.result() for f in futs)
    secs = time.perf_counter() - t0
    return store, secs, rows


def bench_schedule(db_path: str, n: int, seed: int, now: dt.datetime, batch: int, workers: int = 0):
    """Schedule *n* children into a fresh SQLite file in batches of *batch* children (see :func:`populate`)."""
    return populate(f"sqlite:///{db_path}", n, seed, now, batch, workers)


async def bench_dispatch(store, sink_url: str, batch_size: int, concurrency: int, http_client: str = "lean",
                         worker: str = "bench", count: bool = True):
    import aiohttp
    from reminders.clock import SystemClock
    from reminders.delivery import Deliverer
    from reminders.http import LeanHTTPClient
    from reminders.metrics import Metrics
    from reminders.sweep import Sweeper
    due = store.counts_by_status()["pending"]
    if http_client == "aiohttp":
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
    else:
        session = LeanHTTPClient(limit=concurrency)
    try:
        d = Deliverer(session, sink_url, "tok", sink_url + "/sms", SECRET, timeout=30)
        metrics = Metrics()
        sw = Sweeper(store, d, SystemClock(), metrics, worker, batch_size=batch_size, concurrency=concurrency,
                     max_sweep_seconds=3600)
        sw.extend_horizons = False
        t0 = time.perf_counter()
        delivered = await sw.sweep()
        secs = time.perf_counter() - t0
    finally:
        await session.close()
    sent = store.counts_by_status()["sent"] if count else delivered
    outcomes = dict((f"{k[0]}:{k[1]}", v) for k, v in metrics.deliveries.items())
    return {"claimed": delivered, "sent": sent, "secs": secs, "rate": sent / secs if secs else 0.0,
            "outcomes": outcomes, "pending_before": due}


def dispatch_worker(db_path: str, sink_url: str, batch_size: int, concurrency: int, http_client: str,
                    worker: str) -> None:
    """A separate sweep worker process (same code as the service's worker) for multi-worker dispatch."""
    from reminders.store import Store
    store = Store(f"sqlite:///{db_path}", send_time=dt.time(0, 0))
    print("ready", flush=True)
    sys.stdin.readline()
    res = asyncio.run(bench_dispatch(store, sink_url, batch_size, concurrency, http_client, worker=worker,
                                     count=False))
    print(json.dumps(res), flush=True)
    store.close()


def bench_dispatch_multi(store, db_path: str, sink_url: str, args) -> dict:
    """Run args.dispatch_workers sweep worker processes against the same SQLite file."""
    procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--dispatch-worker", db_path, sink_url,
                               str(args.batch_size), str(args.concurrency), args.http_client, f"bench-w{i}"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for i in range(args.dispatch_workers)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    t0 = time.perf_counter()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    outs = [json.loads(p.stdout.readline()) for p in procs]
    for p in procs:
        p.wait(timeout=60)
    secs = time.perf_counter() - t0
    sent = store.counts_by_status()["sent"]
    outcomes: Dict[str, int] = {}
    for o in outs:
        for k, v in o["outcomes"].items():
            outcomes[k] = outcomes.get(k, 0) + v
    return {"claimed": sum(o["claimed"] for o in outs), "sent": sent, "secs": secs, "rate": sent / secs,
            "outcomes": outcomes, "workers": len(procs), "per_worker": [o["claimed"] for o in outs]}


async def _noop_deliver(key):  # module-level: SQLAlchemyJobStore pickles a reference to it
    return key


async def bench_baseline(fams, now: dt.datetime, jobstore: str, db_path: str, horizon_days: int = 120):
    """Same computation and planning, then one APScheduler job per reminder."""
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from reminders import planner
    from reminders.schedule import compute_schedule, load_schedule
    from reminders.store import _cg_info
    if jobstore == "memory":
        store = MemoryJobStore()
    elif jobstore == "sqlalchemy":
        store = SQLAlchemyJobStore(url=f"sqlite:///{db_path}")          # APScheduler defaults
    else:
        # same SQLite durability settings as the service's store (WAL, synchronous=NORMAL), so the
        # comparison is about one pickled job + one commit per reminder vs batched rows, not fsync policy
        import sqlalchemy as sa
        engine = sa.create_engine(f"sqlite:///{db_path}", poolclass=sa.pool.QueuePool)   # kept-open connections

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _rec):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
        store = SQLAlchemyJobStore(engine=engine)
    sched = AsyncIOScheduler(jobstores={"default": store},
                             job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
    sched.start(paused=True)   # jobs are stored but never run during the measurement
    t0 = time.perf_counter()
    jobs = 0
    for i, f in enumerate(fams):
        ch = f["child"]
        s = load_schedule(ch["region"])
        infos = [_cg_info(dict(id=f"cg{i}-{k}", escalation_order=k, language=c.get("language") or ch["language"],
                               quiet_start=c["quiet_start"], quiet_end=c["quiet_end"], opted_out=False,
                               chat_sender_id=c.get("chat_sender_id"), chat_channel=c.get("chat_channel"),
                               phone=c.get("phone"), preferred_channel=c.get("preferred_channel")))
                 for k, c in enumerate(f["caregivers"])]
        today = now.astimezone(planner.zone(ch["timezone"])).date()
        comp = compute_schedule(ch["birth_date"], s, {}, today)
        for p in planner.plan_child(f"k{i}", ch["nickname"], ch["timezone"], ch["birth_date"], comp, infos, s, now,
                                    dt.time(0, 0), until=today + dt.timedelta(days=horizon_days)):
            sched.add_job(_noop_deliver, "date", run_date=p.due_at, args=[p.idempotency_key],
                          id=p.idempotency_key, replace_existing=False)
            jobs += 1
    secs = time.perf_counter() - t0
    sched.shutdown(wait=False)
    return {"jobstore": jobstore, "children": len(fams), "jobs": jobs, "secs": secs,
            "children_per_s": len(fams) / secs}


def machine() -> str:
    model = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return f"{nproc} CPU(s) (`nproc`), {model}, Python {platform.python_version()}, {platform.system()} {platform.release()}"


async def one_run(args, run: int, sink_url: str):
    now = dt.datetime.now(UTC)
    today = now.date()
    tmp = tempfile.mkdtemp(prefix="rbench")
    load0, c0 = loadavg(), cpu_s()
    store, s_secs, rows = bench_schedule(os.path.join(tmp, "r.db"), args.children, run, now, args.insert_batch,
                                         args.plan_workers)
    s_cpu = cpu_s() - c0
    print(f"run {run}: scheduled {args.children} children -> {rows} rows in {s_secs:.1f}s "
          f"({args.children / s_secs:.0f} children/s), rss {rss_mb():.0f} MB", flush=True)
    c0 = cpu_s()
    if args.dispatch_workers > 1:
        disp = bench_dispatch_multi(store, os.path.join(tmp, "r.db"), sink_url, args)
    else:
        disp = await bench_dispatch(store, sink_url, args.batch_size, args.concurrency, args.http_client)
    disp["cpu_s"] = cpu_s() - c0
    load1 = loadavg()
    print(f"run {run}: dispatched {disp['sent']} in {disp['secs']:.1f}s ({disp['rate']:.0f}/s) {disp['outcomes']}, "
          f"rss {rss_mb():.0f} MB", flush=True)
    store.close()
    bfams = families(args.baseline_children, today, seed=1000 + run)
    base_mem = await bench_baseline(bfams, now, "memory", "")
    print(f"run {run}: baseline memory jobstore {base_mem['jobs']} jobs in {base_mem['secs']:.1f}s "
          f"({base_mem['children_per_s']:.0f} children/s)", flush=True)
    sq_fams = bfams[:args.baseline_sql_children]
    base_sql = await bench_baseline(sq_fams, now, "sqlalchemy", os.path.join(tmp, "jobs.db"))
    print(f"run {run}: baseline SQLAlchemyJobStore {base_sql['jobs']} jobs for {len(sq_fams)} children in "
          f"{base_sql['secs']:.1f}s ({base_sql['children_per_s']:.0f} children/s)", flush=True)
    base_wal = await bench_baseline(sq_fams, now, "sqlalchemy-wal", os.path.join(tmp, "jobs-wal.db"))
    print(f"run {run}: baseline SQLAlchemyJobStore (WAL) {base_wal['jobs']} jobs for {len(sq_fams)} children in "
          f"{base_wal['secs']:.1f}s ({base_wal['children_per_s']:.0f} children/s)", flush=True)
    return {"schedule_secs": s_secs, "rows": rows, "children_per_s": args.children / s_secs, "dispatch": disp,
            "base_mem": base_mem, "base_sql": base_sql, "base_wal": base_wal, "rss_mb": rss_mb(), "child_rss_mb": child_rss_mb(),
            "schedule_cpu_s": s_cpu,
            "load": (load0, load1)}


def save_section(lines: List[str], path: Optional[str]) -> str:
    """Join a results section's lines and write it to `path` (when given); the text."""
    text = "\n".join(lines) + "\n"
    if path:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    return text


def write_report(path: str, args, runs, started: str) -> str:
    med = lambda xs: statistics.median(xs)
    sched_s = med([r["schedule_secs"] for r in runs])
    ours = med([r["children_per_s"] for r in runs])
    rate = med([r["dispatch"]["rate"] for r in runs])
    mem_main = max(r["rss_mb"] for r in runs)
    mem_child = max(r["child_rss_mb"] for r in runs)
    nproc_max = max(args.plan_workers, args.dispatch_workers, 0)
    mem = mem_main + nproc_max * mem_child
    bmem = med([r["base_mem"]["children_per_s"] for r in runs])
    bsql = med([r["base_sql"]["children_per_s"] for r in runs])
    bwal = med([r["base_wal"]["children_per_s"] for r in runs])
    rows = runs[0]["rows"]
    ok = lambda b: "yes" if b else "**NO**"
    lines = [
        "# Reminders benchmark", "",
        f"- Date: {started} (UTC)", f"- Machine: {machine()}",
        f"- Command: `nice .venv/bin/python bench/reminders_bench.py --children {args.children} "
        f"--baseline-children {args.baseline_children} --baseline-sql-children {args.baseline_sql_children} "
        f"--runs {args.runs}`",
        f"- Runs: {len(runs)}; figures are medians (peak memory: max). The machine is shared with other "
        "developers (2 cores), so absolute numbers vary run to run.", "",
        "## Workload", "",
        f"{args.children:,} children with birth dates spread uniformly over 0-6 years (90% zh/China schedule, "
        "10% en/US schedule), 1-2 caregivers each, no doses recorded. Scheduling = compute the full schedule with "
        "catch-up, plan merged per-day messages (one per child and day, primary caregiver), insert families, "
        "children, caregivers and reminder rows into a fresh SQLite file (WAL) in batches of "
        f"{args.insert_batch} children; batches run in {args.plan_workers} worker process(es), each "
        "computing/planning outside any transaction and inserting in one short transaction (SQLite: one writer at "
        "a time, the others wait on the lock); generating the synthetic families is included (a few µs per child). Quiet hours are disabled and the send time is 00:00 so that each child's "
        "overdue items (merged into one message) are due at once; every such message is then dispatched by "
        f"{args.dispatch_workers} sweep worker process(es) sharing the SQLite file (atomic claim with lease; batches of "
        f"{args.batch_size}, concurrency {args.concurrency} each) to a loopback aiohttp sink in a "
        "separate process (SMS requests are HMAC-signed and verified by the sink; chat requests go to a "
        "trigger_intent-shaped URL).", "",
        "## Results", "",
        "| metric | result | target | met |", "|---|---|---|---|",
        f"| schedule {args.children:,} children ({rows:,} reminder rows) on SQLite | {sched_s:.1f} s "
        f"({ours:,.0f} children/s) | <= 60 s | {ok(sched_s <= 60)} |",
        f"| dispatch to loopback sink | {rate:,.0f} deliveries/s "
        f"({runs[0]['dispatch']['sent']:,} delivered in run 1) | >= 2,000/s | {ok(rate >= 2000)} |",
        f"| peak memory (ru_maxrss): main {mem_main:,.0f} MB + {nproc_max} x largest worker {mem_child:,.0f} MB "
        f"(upper bound, all at once) | {mem:,.0f} MB | <= 1 GB | {ok(mem <= 1024)} |",
        f"| scheduling throughput vs one APScheduler job per reminder, SQLAlchemyJobStore, APScheduler defaults "
        f"(durable) | {ours / bsql:,.1f}x ({bsql:,.0f} children/s baseline) | >= 10x | {ok(ours / bsql >= 10)} |",
        f"| same, SQLAlchemyJobStore tuned like the service's store (WAL, synchronous=NORMAL, pooled connections) | "
        f"{ours / bwal:,.1f}x ({bwal:,.0f} children/s baseline) | >= 10x | {ok(ours / bwal >= 10)} |",
        f"| scheduling throughput vs one APScheduler job per reminder, MemoryJobStore (not durable) | "
        f"{ours / bmem:,.1f}x ({bmem:,.0f} children/s baseline) | (info) | - |", "",
        "## Per run", "",
        "| run | load avg (start, after dispatch) | schedule s (CPU s) | children/s | rows | deliveries/s (CPU s, sweep only) | sent | "
        "baseline mem children/s (jobs) | baseline SQLAlchemy children/s (children, jobs) | baseline SQLAlchemy WAL "
        "children/s | rss MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(runs, 1):
        lines.append(f"| {i} | {r['load'][0]:.1f}, {r['load'][1]:.1f} | {r['schedule_secs']:.1f} ({r['schedule_cpu_s']:.0f}) | "
                     f"{r['children_per_s']:,.0f} | {r['rows']:,} | "
                     f"{r['dispatch']['rate']:,.0f} ({r['dispatch']['cpu_s']:.0f}) | {r['dispatch']['sent']:,} | "
                     f"{r['base_mem']['children_per_s']:,.0f} ({r['base_mem']['jobs']:,}) | "
                     f"{r['base_sql']['children_per_s']:,.0f} ({r['base_sql']['children']:,}, {r['base_sql']['jobs']:,}) | "
                     f"{r['base_wal']['children_per_s']:,.0f} | "
                     f"{r['rss_mb']:,.0f} |")
    lines += ["", "## Notes (read before quoting the numbers)", "",
              f"- The baselines run on a subset ({args.baseline_children:,} children in memory, "
              f"{args.baseline_sql_children:,} with SQLAlchemyJobStore) and are compared as children/s, i.e. "
              "linearly extrapolated. The baseline does the same schedule computation and planning but stores "
              "only jobs (no families/children/caregivers rows), which favours the baseline.",
              "- The MemoryJobStore baseline is listed for completeness: it is fast because nothing is persisted, "
              "and every reminder is lost on restart, which is exactly what the service must not do. The 10x "
              "target is therefore judged against the durable SQLAlchemyJobStore baseline.",
              "- SQLAlchemyJobStore pickles every job and commits one row per add_job on the event loop thread. "
              "With APScheduler's defaults (SQLite rollback journal) every add_job also waits for an fsync, so that "
              "baseline is slow and very noisy on this shared disk; the WAL/synchronous=NORMAL variant uses the same "
              "SQLite settings as the service's store (and a connection pool instead of SQLAlchemy 1.4's default "
              "NullPool for SQLite files, which reopens the file for every add_job) and isolates the cost of one pickled job + one commit per "
              "reminder vs batched rows.",
              "- Deliveries/s includes claiming rows (atomic UPDATE ... RETURNING with a lease), the HTTP round trip "
              "to the sink with the service's default delivery HTTP client (`lean`), the quiet-hours/opt-out checks "
              "and writing outcomes (one executemany per outcome; sent vaccination reminders get `escalate_at`).",
              "- CPU s = user+sys seconds of the benchmark process and its finished child processes during the "
              "phase (plan workers, sweep workers); the sink's CPU is not included. They show how much of the "
              "wall time was spent waiting for a CPU on this shared machine (load averages in the table).",
              "- Peak memory: ru_maxrss of the main process plus, as an upper bound, the number of worker "
              "processes times the largest worker's ru_maxrss (workers do not all peak together); the sink "
              "(a plain aiohttp server, tens of MB) is not counted."]
    return save_section(lines, path)


async def main_async(args) -> None:
    with SinkProcess() as sink:
        url = sink.url
        started = dt.datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
        runs = []
        for run in range(1, args.runs + 1):
            runs.append(await one_run(args, run, url))
        print("sink:", sink.stats())
        text = write_report(None if args.no_write else args.out, args, runs, started)
        print(text)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--children", type=int, default=100_000)
    ap.add_argument("--baseline-children", type=int, default=10_000)
    ap.add_argument("--baseline-sql-children", type=int, default=2_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--insert-batch", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--plan-workers", type=int, default=2,
                    help="processes computing/planning while this process inserts (0 = all in-process)")
    ap.add_argument("--http-client", default="lean", choices=["lean", "aiohttp"])
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks", "reminders.md"))
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--dispatch-workers", type=int, default=2,
                    help="sweep worker processes sharing the SQLite file during dispatch (1 = in this process)")
    ap.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--sink-secret", default=SECRET, help=argparse.SUPPRESS)
    ap.add_argument("--dispatch-worker", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.dispatch_worker:
        db, url, bs, cc, hc, wid = args.dispatch_worker
        dispatch_worker(db, url, int(bs), int(cc), hc, wid)
        return
    if args.sink:
        run_sink(args.sink, args.sink_secret)
        return
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
