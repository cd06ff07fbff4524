"""The sweep: ONE APScheduler interval job per worker claims due rows in batches and delivers
them with bounded concurrency. Never one APScheduler job per reminder."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from typing import Any, Dict, List, Mapping, Optional

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from . import planner
from .delivery import Deliverer
from .metrics import Metrics
from .store import Store, is_transient

log = logging.getLogger("reminders.sweep")

SWEEP_JOB_ID = "reminders-sweep"


class Sweeper:
    def __init__(self, store: Store, deliverer: Deliverer, clock, metrics: Metrics, worker_id: str, *,
                 batch_size: int = 200, concurrency: int = 50, lease: dt.timedelta = dt.timedelta(seconds=120),
                 max_attempts: int = 6, backoff_base: float = 30.0, backoff_cap: float = 3600.0,
                 max_sweep_seconds: float = 30.0, rng: Optional[random.Random] = None,
                 extend_horizons: bool = True):
        self.store, self.deliverer, self.clock, self.metrics = store, deliverer, clock, metrics
        self.worker_id = worker_id
        self.batch_size, self.lease, self.max_attempts = batch_size, lease, max_attempts
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.max_sweep_seconds = max_sweep_seconds
        self.extend_horizons = extend_horizons
        self.sem = asyncio.Semaphore(concurrency)
        self.rng = rng or random.Random()
        self._lock = asyncio.Lock()
        self.scheduler: Optional[AsyncIOScheduler] = None

    def start(self, interval: float, misfire_grace_time: int) -> AsyncIOScheduler:
        """Start an AsyncIOScheduler with the single sweep job (call inside the running loop)."""
        self.scheduler = AsyncIOScheduler(job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": misfire_grace_time})
        self.scheduler.add_job(self.sweep, "interval", seconds=interval, id=SWEEP_JOB_ID,
                               next_run_time=dt.datetime.now(dt.timezone.utc), replace_existing=True)
        self.scheduler.start()
        return self.scheduler

    def kick(self) -> None:
        """Run the sweep job as soon as possible (e.g. after queuing a reply)."""
        if self._lock.locked():
            return  # a sweep is running (max_instances=1); it or the next interval picks the rows up
        if self.scheduler is not None and self.scheduler.running:
            job = self.scheduler.get_job(SWEEP_JOB_ID)
            if job is not None:
                job.modify(next_run_time=dt.datetime.now(dt.timezone.utc))

    def shutdown(self) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    async def sweep(self) -> int:
        """One sweep run: claim and deliver batches until nothing is due (or the time budget ends).

        Pipelined: the next batch is claimed (in the DB thread) while the current one is being
        delivered, and a batch's outcomes are written while the next one is delivered.
        """
        if self._lock.locked():
            return 0
        async with self._lock:
            t0 = time.perf_counter()
            total = 0
            completions: List[asyncio.Future] = []
            try:
                claim = asyncio.ensure_future(self._claim())
                while claim is not None:
                    rows = await claim
                    claim = None
                    if not rows:
                        break
                    total += len(rows)
                    if len(rows) >= self.batch_size and time.perf_counter() - t0 < self.max_sweep_seconds:
                        claim = asyncio.ensure_future(self._claim())      # prefetch the next batch
                    results = await asyncio.gather(*(self._process(r) for r in rows))
                    completions.append(asyncio.ensure_future(self._write_outcomes(results)))
                    if len(completions) > 2:
                        await completions.pop(0)
            except Exception as e:  # keep the job alive; claimed rows are retried after their lease expires
                self._log_failure("sweep failed", e)
            finally:
                for f in completions:
                    try:
                        await f
                    except Exception:
                        log.exception("writing delivery outcomes failed (rows will be re-sent after the lease)")
            try:
                n = await self.store.run(self.store.escalate_due, self.clock.now())
                if n:
                    log.info("escalated %d unacknowledged reminders", n)
                    total += await self.sweep_inner_once()
            except Exception as e:
                self._log_failure("escalation failed", e)
            if self.extend_horizons:
                try:
                    n = await self.store.run(self.store.extend_horizons, self.clock.now())
                    if n:
                        log.info("extended the planning horizon of %d children", n)
                except Exception as e:
                    self._log_failure("extending planning horizons failed", e)
            self.metrics.sweep(time.perf_counter() - t0, total)
            return total

    async def sweep_inner_once(self) -> int:
        """Claim and deliver one batch (used right after escalation rows were queued)."""
        rows = await self._claim()
        if not rows:
            return 0
        results = await asyncio.gather(*(self._process(r) for r in rows))
        await self._write_outcomes(results)
        return len(rows)

    async def _write_outcomes(self, results: List[Dict[str, Any]]) -> None:
        """``Store.complete`` the batch, retrying while the database is unreachable (for up to one lease).

        The messages of this batch have already been handed to the gateway: if the outcome were
        dropped, every one of them would be sent again once the lease expires. Re-applying a write
        whose commit was acknowledged too late is harmless (same claim token, same final status; at
        most ``attempts`` counts one extra). After the lease another worker may own the rows and the
        write would no longer match their claim token, so retrying longer is pointless.
        """
        deadline = time.monotonic() + self.lease.total_seconds()
        pause = 0.2
        while True:
            try:
                await self.store.run(self.store.complete, results, self.clock.now())
                return
            except Exception as e:
                if not is_transient(e) or time.monotonic() + pause > deadline:
                    raise
                log.warning("writing %d delivery outcomes failed, retrying in %.1f s: %s", len(results), pause,
                            _one_line(e))
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)

    @staticmethod
    def _log_failure(what: str, e: BaseException) -> None:
        """A database outage is expected operation (one line per sweep); anything else gets a traceback."""
        if is_transient(e):
            log.warning("%s, database unavailable (retrying at the next sweep): %s", what, _one_line(e))
        else:
            log.error("%s", what, exc_info=e)

    async def _claim(self) -> List[Dict[str, Any]]:
        return await self.store.run(self.store.claim_batch, self.worker_id, self.clock.now(), self.lease,
                                    self.batch_size)

    async def _process(self, row: Mapping[str, Any]) -> Dict[str, Any]:
        base = {"id": row["id"], "token": row["claim_token"]}
        ch = row["channel"]
        if row["kind"] != "reply":
            if row["opted_out"]:
                self.metrics.delivery(ch, "cancelled")
                return {**base, "outcome": "cancel", "error": "opted_out"}
            if row["kind"] == "escalation" and row.get("group_acked"):
                self.metrics.delivery(ch, "cancelled")
                return {**base, "outcome": "cancel", "error": "acknowledged"}
            if row["quiet_start"] != row["quiet_end"]:
                now = self.clock.now()
                qs, qe = planner.parse_hhmm(row["quiet_start"]), planner.parse_hhmm(row["quiet_end"])
                allowed = planner.next_allowed(now, row["timezone"], qs, qe)
                if allowed > now:  # never send in quiet hours
                    self.metrics.delivery(ch, "deferred")
                    return {**base, "outcome": "defer", "next_at": allowed}
        async with self.sem:
            res = await self.deliverer.deliver(row)
        attempts = int(row["attempts"] or 0) + 1
        if res.outcome == "retry" and attempts >= self.max_attempts:
            self.metrics.delivery(ch, "failed")
            return {**base, "outcome": "failed", "error": f"gave up after {attempts} attempts: {res.error}"}
        self.metrics.delivery(ch, res.outcome)
        if res.outcome == "retry":
            delay = planner.backoff_delay(attempts, self.backoff_base, self.backoff_cap, self.rng.random())
            return {**base, "outcome": "retry", "error": res.error,
                    "next_at": self.clock.now() + dt.timedelta(seconds=delay)}
        if res.outcome == "failed":
            return {**base, "outcome": "failed", "error": res.error}
        return {**base, "outcome": "sent", "escalate": row["kind"] in ("schedule", "escalation")}


def _one_line(e: BaseException) -> str:
    """First line of a driver error (SQLAlchemy appends the SQL statement and a link)."""
    return (str(getattr(e, "orig", None) or e).strip().splitlines() or [type(e).__name__])[0][:300]
