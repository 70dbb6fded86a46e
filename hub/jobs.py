"""What every background job shares: its runtime, its shape, and how it claims work.

A job does one unit of work per call and says how much it did (``hub.worker`` runs the list).
Claiming a row of work goes through :func:`claiming`, so that on PostgreSQL two workers never
take the same row (``FOR UPDATE SKIP LOCKED``) and on SQLite, where the whole database is
locked by the writing transaction, the statement stays a plain select.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session, sessionmaker

from hub.db import session_scope
from hub.runtime import Runtime

T = TypeVar("T", bound=tuple)  # type: ignore[type-arg]


Job = Callable[[sessionmaker[Session], Runtime], int]
TransactionJob = Callable[[Session, Runtime], int]


def in_one_transaction(work: TransactionJob) -> Job:
    """A job whose call is one unit of work: committed as a whole, or rolled back."""

    def job(maker: sessionmaker[Session], context: Runtime) -> int:
        with session_scope(maker) as session:
            return work(session, context)

    return job


def claiming(stmt: Select[T]) -> Select[T]:
    """``stmt`` locking the rows it returns and skipping rows another worker holds."""
    return stmt.with_for_update(skip_locked=True)
