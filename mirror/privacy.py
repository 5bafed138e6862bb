"""Keeping clients' personal data no longer than policy allows.

``enforce_retention`` applies ``[privacy] retention_days`` (scheduled in ``serve``, and
``booxi-mirror privacy enforce``); ``erase_client`` removes one client's data at once
(``DELETE /client/{id}`` through the mirror, or a deletion or anonymization seen
upstream). Both end with a WAL checkpoint, and the database runs with
``secure_delete``: what was removed is zeroed, not left in the file's free space or in
the write-ahead log. See ``storage.erasure`` and ``storage.pii`` for what counts.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.engine import Connection

from storage import erasure
from storage.times import utcnow
from storage.writer import Writer

log = logging.getLogger(__name__)


async def enforce_retention(writer: Writer, days: int) -> erasure.RetentionOutcome:
    now = utcnow()

    def job(conn: Connection) -> erasure.RetentionOutcome:
        return erasure.apply_retention(conn, days, now)

    outcome = await writer.run(job)
    await writer.checkpoint()
    log.info(
        "privacy.retention.done",
        extra={
            "days": days,
            "anonymized": len(outcome.anonymized),
            "lifted": len(outcome.lifted),
            **outcome.counts,
        },
    )
    return outcome


async def erase_client(writer: Writer, client_id: int, *, delete: bool = True) -> dict[str, Any]:
    now = utcnow()
    counts = await writer.run(
        lambda conn: erasure.erase_client(conn, client_id, now, delete=delete)
    )
    await writer.checkpoint()
    log.info("privacy.erased", extra={"client_id": client_id, **counts})
    return counts
