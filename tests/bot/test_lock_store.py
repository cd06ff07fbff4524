"""The lock store's waiters survive the expiry of their own ticket (scale-out mode)."""
import asyncio
import time

import pytest
from rasa.core.lock import TicketLock
from rasa.core.lock_store import RedisLockStore
from rasa.utils.endpoints import EndpointConfig

from bot.lock_store import ACQUIRE, REISSUE, WAIT, RecoveringRedisLockStore, next_step


def test_next_step_for_a_waiting_ticket():
    lock = TicketLock("c1")
    dead = lock.issue_ticket(60)
    mine = lock.issue_ticket(60)
    assert next_step(lock, dead) == ACQUIRE
    assert next_step(lock, mine) == WAIT
    lock.tickets.popleft()
    assert next_step(lock, mine) == ACQUIRE


def test_next_step_when_both_tickets_expired():
    lock = TicketLock("c1")
    lock.issue_ticket(0.01)
    mine = lock.issue_ticket(0.01)
    time.sleep(0.05)
    assert lock.now_serving == 0          # what made Rasa's own waiter poll forever
    assert next_step(lock, mine) == REISSUE


@pytest.fixture
def redis_config(engines):
    redis = engines.engines.redis
    return EndpointConfig(url=redis.host, port=redis.port, password=redis.password, db=3,
                          key_prefix=f"test{time.monotonic_ns()}", type="bot.lock_store.RecoveringRedisLockStore")


async def _take_after_a_dead_turn(store, conversation: str) -> float:
    """A turn whose server died holds ticket 1; the retried turn queues right behind it.
    (The dead ticket outlives the waiter's a little, so the waiter's expires first: with
    Rasa's store it then waits for a ticket that no longer exists, whatever the timing.)"""
    store.issue_ticket(conversation, 1.2)
    t0 = time.monotonic()
    async with store.lock(conversation, lock_lifetime=1.0, wait_time_in_seconds=0.2):
        return time.monotonic() - t0


def test_rasa_redis_lock_store_waits_forever_ours_does_not(redis_config):
    kwargs = dict(redis_config.kwargs)
    rasa_store = RedisLockStore(host=redis_config.url, **kwargs)
    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(asyncio.wait_for(_take_after_a_dead_turn(rasa_store, "stuck"), timeout=4))
    ours = RecoveringRedisLockStore(redis_config)
    waited = asyncio.run(asyncio.wait_for(_take_after_a_dead_turn(ours, "recovers"), timeout=4))
    assert 1.0 < waited < 3.0
    assert ours.get_lock("recovers") is None or not ours.get_lock("recovers").tickets  # cleaned up
