"""Rasa's Redis lock store, without the wait that never ends.

Rasa 3.6 queues the turns of one conversation with numbered tickets that
expire. A turn waiting for the lock polls once a second until its ticket is
the first one, but its own ticket expires too: when it expires together with
the ticket ahead of it (a server killed mid-turn, the turn retried at once on
another server, both tickets issued within a second), the queue is empty,
"now serving" is 0, and the waiter polls forever (seen in the scale-out fault
benchmark: turns hung until the 120 s request timeout). Here a waiter whose
ticket expired takes a new one at the end of the queue (first, if the queue
emptied out).

Used by scale-out mode (bot/endpoints.cluster.yml: `type: bot.lock_store.RecoveringRedisLockStore`).
"""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import AsyncGenerator, List, Text

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)

ACQUIRE, REISSUE, WAIT = "acquire", "reissue", "wait"


def next_step(lock: TicketLock, ticket: int) -> str:
    """What a turn holding `ticket` does now: take the lock, take a new ticket, or wait."""
    if lock.now_serving == ticket:
        return ACQUIRE
    if lock._ticket_for_ticket_number(ticket) is None:   # our ticket expired while waiting
        return REISSUE
    return WAIT


class RecoveringRedisLockStore(RedisLockStore):
    """RedisLockStore whose waiters survive the expiry of their own ticket."""

    def __init__(self, endpoint_config: EndpointConfig) -> None:
        super().__init__(host=endpoint_config.url, **endpoint_config.kwargs)

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: Text,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = 1,
    ) -> AsyncGenerator[TicketLock, None]:
        held: List[int] = [self.issue_ticket(conversation_id, lock_lifetime)]
        try:
            yield await self._wait_for_turn(conversation_id, held, lock_lifetime, wait_time_in_seconds)
        finally:
            self.cleanup(conversation_id, held[0])   # the ticket we hold now, maybe a re-issued one

    async def _wait_for_turn(self, conversation_id: Text, held: List[int], lock_lifetime: float,
                             wait_time_in_seconds: float) -> TicketLock:
        while True:
            lock = self.get_lock(conversation_id)
            if not lock:
                raise LockError(f"Could not acquire lock for conversation_id '{conversation_id}'.")
            step = next_step(lock, held[0])
            if step == ACQUIRE:
                return lock
            if step == REISSUE:
                logger.warning("Ticket %s for a conversation expired while waiting; queueing again.", held[0])
                held[0] = self.issue_ticket(conversation_id, lock_lifetime)
                continue
            await asyncio.sleep(wait_time_in_seconds)
            self.update_lock(conversation_id)
