"""Settings of one simulated Booxi: the seed, the size of the world, the keys and webhooks."""

from __future__ import annotations

import dataclasses
import datetime as dt

from simulator import dialects as dialect_names


def default_anchor() -> dt.datetime:
    """Midnight UTC today: the day the generated bookings are laid out around."""
    now = dt.datetime.now(dt.UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclasses.dataclass(frozen=True)
class SimSettings:
    """Everything that shapes a simulator run.

    The same ``seed`` and ``anchor`` give the same world, field for field. ``anchor``
    defaults to midnight UTC today, so bookings always run from 30 days before today
    to 90 days after it. ``dialects``: the readings of Booxi to play (see
    ``simulator.dialects``); an unknown name is a ``ValueError`` listing the valid ones.
    """

    partner_key: str
    merchant_key: str
    seed: int = 7
    stores: int = 3
    staff_per_store: int = 5
    clients: int = 200
    page_size: int = 50
    webhook_urls: tuple[str, ...] = ()
    webhook_secret: str | None = dataclasses.field(default=None, repr=False)
    signing_secret: str | None = dataclasses.field(default=None, repr=False)
    rate_limit: bool = True
    anchor: dt.datetime = dataclasses.field(default_factory=default_anchor)
    days_before: int = 30
    days_after: int = 90
    dialects: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        dialect_names.expand(self.dialects)  # ValueError naming the valid ones
        object.__setattr__(self, "dialects", tuple(self.dialects))

    def __repr__(self) -> str:  # keys are secrets even in a simulator: keep them out of logs
        return (
            f"SimSettings(seed={self.seed}, stores={self.stores}, "
            f"staff_per_store={self.staff_per_store}, clients={self.clients}, "
            f"page_size={self.page_size}, webhooks={len(self.webhook_urls)}, "
            f"rate_limit={self.rate_limit}, anchor={self.anchor.isoformat()}, "
            f"dialects={list(self.dialects)})"
        )
