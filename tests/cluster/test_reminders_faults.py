"""Scale-out reminders under faults: real ``python -m reminders serve`` workers (sweep enabled) share a
scratch PostgreSQL database and deliver to a real aiohttp sink in its own process that records every
``Idempotency-Key`` (``bench/reminders_bench.py``'s sink; the scenarios are those of
``bench/reminders_faults.py`` with small numbers).

Each test checks that its fault really happened (claims held by the killed worker, PostgreSQL down,
requests refused) and that every released reminder was accepted by the sink and marked sent in the
database. Waits poll with deadlines; no sleep is used as an assertion.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Iterator, Tuple

import pytest

from bench.reminders_cluster_bench import SinkProcess, WorkerSettings, run_dispatch, seed
from bench.reminders_faults import private_postgres, run_gateway_outage, run_kill, run_postgres_restart

# Small batches and a slowed-down sink: the dispatch of a few hundred rows must last long enough for
# both workers to take part and for the fault to land in the middle of it.
SMALL = dict(interval=0.5, batch_size=25, concurrency=5)


@pytest.fixture(scope="module")
def sink() -> Iterator[SinkProcess]:
    with SinkProcess() as s:
        yield s


@pytest.fixture
def seeded(engines) -> Iterator[Tuple[str, dt.datetime]]:
    """A scratch database with 300 children (one reminder due each, all rows on hold)."""
    url = engines.fresh_database("cluster_faults")
    yield url, seed(url, 300, plan_workers=0)


def _assert_all_delivered_once_at_the_gateway(res) -> None:
    assert res["due"] > 0
    assert res["delivered"] == res["due"], res            # every released row reached the sink ...
    assert res["not_sent_in_db"] == 0 and res["lost"] == 0, res   # ... and is marked sent
    assert res["unexpected"] == 0, res                    # nothing that was not due
    assert res["duplicates_accepted"] == 0


def test_two_workers_share_the_rows_without_duplicates(seeded, sink: SinkProcess, tmp_path: Path) -> None:
    url, seed_now = seeded
    # 50 ms per answer, 5 at a time: one worker alone would need 3 s, far more than a sweep interval
    res = run_dispatch(url, seed_now, ["w1", "w2"], sink, WorkerSettings(**SMALL), tmp_path, sink_delay=0.05,
                       timeout=120)
    _assert_all_delivered_once_at_the_gateway(res)
    assert res["resent"] == 0 and res["requests"] == res["due"], res   # each key POSTed exactly once
    assert all(n > 0 for n in res["split"].values()), res["split"]     # the work really was shared
    assert sum(res["split"].values()) == res["due"]


def test_sigkilled_worker_claims_are_finished_by_the_other_after_the_lease(
        seeded, sink: SinkProcess, tmp_path: Path) -> None:
    url, seed_now = seeded
    lease_s = 5
    res = run_kill(url, seed_now, sink, WorkerSettings(lease=f"{lease_s}s", **SMALL), tmp_path, kill_after=0.3,
                   sink_delay=0.05, timeout=120)
    assert res["orphans"] > 0, "w1 held no claimed rows when it was killed"
    assert res["accepted_at_kill"] < res["due"], "killed after the work was done"
    _assert_all_delivered_once_at_the_gateway(res)
    assert res["survivor_alive"]
    # at least once: only rows the dead worker held may be sent twice, each with its own key, once more
    assert res["resent_outside_orphans"] == 0, res
    assert res["resent_posts"] == res["resent"] <= res["orphans"], res
    # the takeover waits for the lease, and not much longer (sweep interval + delivery)
    assert res["recovery_s"] <= lease_s + 10, res


def test_postgres_restart_during_dispatch(engines, sink: SinkProcess, tmp_path: Path) -> None:
    from launcher.engines import create_databases, postgres_bin_dir
    if postgres_bin_dir() is None:
        pytest.skip("a private PostgreSQL server needs Debian's postgresql package (initdb, pg_ctl)")
    with private_postgres(tmp_path / "var") as pg:      # never restart the shared server
        create_databases(pg.address, ("faults",))
        url = pg.address.url("faults")
        seed_now = seed(url, 300, plan_workers=0)
        res = run_postgres_restart(pg, url, seed_now, sink, WorkerSettings(lease="30s", interval=0.5, batch_size=25,
                                                                           concurrency=2),
                                   tmp_path / "logs", down_s=3.0, stop_after=0.2, sink_delay=0.1, timeout=120)
    assert res["was_down"], "PostgreSQL was still accepting connections"
    assert res["accepted_at_stop"] < res["due"], "stopped after the dispatch"
    assert res["accepted_at_start"] < res["due"], "nothing was left to do after the restart"
    assert res["db_errors_logged"] > 0, "the workers never noticed the outage"
    assert res["same_processes"], "a worker died or was replaced"
    _assert_all_delivered_once_at_the_gateway(res)
    # outcome writes of batches already handed to the gateway wait for the database: no re-sends
    assert res["resent"] == 0, res


def test_sms_gateway_outage_then_recovery(seeded, sink: SinkProcess, tmp_path: Path) -> None:
    url, seed_now = seeded
    outage_s, base, cap = 12.0, 1.0, 4.0
    # attempts are at least base/2 apart: 12 s of outage cost at most 25; none may be given up
    settings = WorkerSettings(backoff_base=base, backoff_cap=cap, max_attempts=50, **SMALL)
    res = run_gateway_outage(url, seed_now, sink, settings, tmp_path, outage_s, limit=200, timeout=120)
    assert res["sms_due"] > 0 and res["refused"] > 0
    assert res["sms_refused_keys"] == res["sms_due"], res   # every SMS reminder met the outage
    assert res["sms_accepted_during"] == 0, res
    assert res["chat_during_outage"] == res["due"] - res["sms_due"], res   # chat went on meanwhile
    _assert_all_delivered_once_at_the_gateway(res)
    assert res["failed"] == 0 and res["max_attempts_used"] < settings.max_attempts, res
    assert res["recovery_s"] <= cap + 10, res             # backoff is capped: delivered soon after
