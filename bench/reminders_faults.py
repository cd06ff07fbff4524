"""Fault scenarios of the scale-out reminders (run by ``bench/reminders_cluster_bench.py``, and with
smaller numbers by ``tests/cluster/test_reminders_faults.py``).

Each scenario takes a seeded database (rows on hold, see ``reminders_cluster_bench.seed``), runs two
real worker processes against it, injects one fault while they dispatch, waits (polling, with a
deadline) until every released row is delivered and marked sent, and returns the figures together with
the facts that show the fault really happened (claims outstanding at the SIGKILL, PostgreSQL down,
requests refused by the gateway).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator, Optional

from bench.reminders_cluster_bench import (DbProbe, SinkProcess, WorkerSettings, create_database, drop_database,
                                           new_database_name, outcome, release, running_workers, seed,
                                           wait_all_sent, wait_until)
from launcher.supervisor import free_port

# the sweep's log lines when it meets a database outage (reminders/sweep.py)
DB_OUTAGE_MARKERS = ("database unavailable", "delivery outcomes failed")


def run_kill(db_url: str, seed_now: dt.datetime, sink: SinkProcess, settings: WorkerSettings, log_dir: Path,
             limit: Optional[int] = None, kill_after: float = 0.3, sink_delay: float = 0.0,
             timeout: float = 300.0) -> Dict[str, object]:
    """SIGKILL worker w1 once *kill_after* of the rows are delivered and while it holds claimed rows;
    w2 must take over w1's claims when their lease (``settings.lease``) expires."""
    sink.control(reset=True, fail={}, delay=sink_delay)
    db = DbProbe(db_url)
    held = "SELECT {} FROM reminders WHERE claimed_by = 'w1' AND status = 'claimed'"
    try:
        with running_workers(["w1", "w2"], db_url, sink.url, settings, log_dir) as (w1, w2):
            due = release(db_url, seed_now, limit)

            def w1_busy() -> bool:
                n = sink.stats()["n"]
                if n >= len(due):
                    raise RuntimeError("the dispatch ended before w1 was seen holding claims: "
                                       "more rows or a sink delay are needed")
                return n >= kill_after * len(due) and db.scalar(held.format("count(*)")) > 0
            wait_until(w1_busy, timeout, "w1 in the middle of its work", every=0.05)
            accepted_at_kill = sink.stats()["n"]
            killed_at = w1.kill()
            # w1 is dead and its lease has not run out: nobody else may touch these rows yet
            orphan_ids = db.column(held.format("id"))
            orphan_keys = set(db.column(held.format("idempotency_key")))
            at_kill = sink.keys()
            orphans_delivered = sum(1 for k in orphan_keys if k in at_kill and at_kill[k][0] is not None)
            recovered_at = wait_until(lambda: db.scalar(
                "SELECT count(*) FROM reminders WHERE id = ANY(:ids) AND status <> 'sent'", ids=orphan_ids) == 0,
                timeout, "the killed worker's rows to be marked sent")
            done_at = wait_all_sent(db, sink, due, timeout)
            split = {"w1": "killed", "w2": w2.sent()}
            survivor_alive = w2.alive()
        res = outcome(due, sink.keys(), db)
        resent_keys = {k for k, rec in sink.keys().items() if rec[2] > 1}
    finally:
        db.close()
    res.update(lease=settings.lease, orphans=len(orphan_ids), orphans_delivered_before_kill=orphans_delivered,
               accepted_at_kill=accepted_at_kill, recovery_s=recovered_at - killed_at,
               done_after_kill_s=done_at - killed_at, split=split, survivor_alive=survivor_alive,
               resent_outside_orphans=len(resent_keys - orphan_keys))
    return res


def run_gateway_outage(db_url: str, seed_now: dt.datetime, sink: SinkProcess, settings: WorkerSettings,
                       log_dir: Path, outage_s: float, limit: Optional[int] = None,
                       timeout: float = 300.0) -> Dict[str, object]:
    """The SMS gateway answers 503 from the release for *outage_s* seconds, then recovers; chat (Rasa)
    stays up. Every SMS reminder must be delivered after the recovery, none given up."""
    sink.control(reset=True, fail={"/sms": 503}, delay=0.0)
    db = DbProbe(db_url)
    try:
        with running_workers(["w1", "w2"], db_url, sink.url, settings, log_dir):
            due = release(db_url, seed_now, limit)
            started = time.time()
            sms = {k for k, ch in due.items() if ch == "sms"}
            # the outage lasts outage_s whatever happens meanwhile (this is the fault, not a check)
            time.sleep(max(0.0, started + outage_s - time.time()))
            during = sink.keys()
            sink.control(fail={})
            back_at = time.time()
            wait_all_sent(db, sink, due, timeout)
            failed = db.scalar("SELECT count(*) FROM reminders WHERE status = 'failed'")
            max_attempts_used = db.scalar("SELECT max(attempts) FROM reminders WHERE channel = 'sms'")
        keys = sink.keys()
        res = outcome(due, keys, db)
    finally:
        db.close()
    refused_during = sum(rec[3] for rec in during.values())
    res.update(outage_s=outage_s, backoff_base=settings.backoff_base, backoff_cap=settings.backoff_cap,
               max_attempts=settings.max_attempts, sms_due=len(sms), refused=refused_during,
               sms_refused_keys=sum(1 for k in sms if k in during and during[k][3] > 0),
               sms_accepted_during=sum(1 for k in sms if k in during and during[k][0] is not None),
               chat_during_outage=sum(1 for k, rec in during.items() if rec[0] is not None and k not in sms),
               recovery_s=max(keys[k][0] for k in sms) - back_at if sms else 0.0,
               sms_resumed_s=min(keys[k][0] for k in sms) - back_at if sms else 0.0,
               failed=failed, max_attempts_used=max_attempts_used)
    return res


@contextlib.contextmanager
def private_postgres(var_dir: Path) -> Iterator[object]:
    """A PostgreSQL server of our own (``launcher.engines.LocalPostgres`` on a free port, data under
    *var_dir*): restarting it disturbs nobody else's tests. Stopped and deleted on exit."""
    from launcher.engines import LocalPostgres
    pg = LocalPostgres(Path(var_dir), secrets.token_hex(12), free_port())
    try:
        pg.start()
        yield pg
    finally:
        pg.stop("immediate")
        shutil.rmtree(pg.data_dir, ignore_errors=True)


def run_postgres_restart(pg, db_url: str, seed_now: dt.datetime, sink: SinkProcess, settings: WorkerSettings,
                         log_dir: Path, down_s: float = 5.0, stop_after: float = 0.3, limit: Optional[int] = None,
                         sink_delay: float = 0.0, timeout: float = 300.0) -> Dict[str, object]:
    """Stop PostgreSQL (*pg*, a ``LocalPostgres``) once *stop_after* of the rows are delivered, keep it
    down *down_s* seconds, start it again; the same worker processes must finish the work."""
    sink.control(reset=True, fail={}, delay=sink_delay)
    db = DbProbe(db_url)
    try:
        with running_workers(["w1", "w2"], db_url, sink.url, settings, log_dir) as workers:
            pids = [w.pid for w in workers]
            due = release(db_url, seed_now, limit)
            wait_until(lambda: sink.stats()["n"] >= stop_after * len(due), timeout, "dispatch under way",
                       every=0.05)
            accepted_at_stop = sink.stats()["n"]
            pg.stop()                                   # pg_ctl -m fast -w: sessions are terminated
            stopped_at = time.time()
            down_seen = not pg.running()
            time.sleep(down_s)                          # the outage itself (not a check)
            down_still = not pg.running()
            accepted_before_start = sink.stats()["n"]
            pg.start()
            up_at = time.time()
            done_at = wait_all_sent(db, sink, due, timeout)
            same_processes = [w.pid for w in workers] == pids and all(w.alive() for w in workers)
            split = {w.name: w.sent() for w in workers}
            logs = [w.log_text() for w in workers]
        keys = sink.keys()
        res = outcome(due, keys, db)
    finally:
        db.close()
    after = [rec[0] for rec in keys.values() if rec[0] is not None and rec[0] > up_at]
    res.update(lease=settings.lease, resumed_s=(min(after) - up_at) if after else None,
               accepted_at_stop=accepted_at_stop, delivered_while_down=accepted_before_start - accepted_at_stop,
               accepted_at_start=accepted_before_start, down_s=up_at - stopped_at,
               was_down=down_seen and down_still, recovery_s=done_at - up_at, same_processes=same_processes,
               split=split, db_errors_logged=sum(log.count(m) for log in logs for m in DB_OUTAGE_MARKERS))
    return res


def run_all(address, template: str, seed_now: dt.datetime, sink: SinkProcess, log_dir: Path, args,
            created: list) -> Dict[str, Dict[str, object]]:
    """The three faults of the benchmark (``args.fault_reminders`` due rows each)."""
    out: Dict[str, Dict[str, object]] = {}
    n = args.fault_reminders
    base = dict(batch_size=args.batch_size, concurrency=args.concurrency)

    name = new_database_name("rcb_kill")
    created.append(name)
    url = create_database(address, name, template)
    out["kill"] = run_kill(url, seed_now, sink, WorkerSettings(lease="10s", **base), log_dir / name, limit=n)
    drop_database(address, name)
    print("kill:", _brief(out["kill"]), flush=True)

    with tempfile.TemporaryDirectory(prefix="rcb-pg-") as tmp, private_postgres(Path(tmp)) as pg:
        create_database(pg.address, "faults")
        url = pg.address.url("faults")
        pg_seed_now = seed(url, n)
        out["restart"] = run_postgres_restart(pg, url, pg_seed_now, sink, WorkerSettings(lease="30s", **base),
                                              log_dir / "restart", down_s=5.0)
    if out["restart"]["accepted_at_start"] >= n:
        raise RuntimeError("PostgreSQL came back after the dispatch had ended: more rows are needed")
    print("restart:", _brief(out["restart"]), flush=True)

    name = new_database_name("rcb_outage")
    created.append(name)
    url = create_database(address, name, template)
    out["outage"] = run_gateway_outage(url, seed_now, sink, WorkerSettings(
        backoff_base=2.0, backoff_cap=15.0, max_attempts=100, **base), log_dir / name, args.outage, limit=n)
    drop_database(address, name)
    print("outage:", _brief(out["outage"]), flush=True)
    return out


def _brief(res: Dict[str, object]) -> Dict[str, object]:
    return {k: v for k, v in res.items() if k not in ("first", "last")}
