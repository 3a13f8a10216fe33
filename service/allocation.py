"""Allocating a funding round's pool (shared/spec/programs.md, "Pool allocation across a
round"). The round's quota is checked first, by ``service.quotas`` (``service.db.rounds``).

Pure: no database, no HTTP. Works in integer fen, so every share is exact:

* the pool is spread pro rata to entitlement, each share ROUND_DOWN to the fen, and the leftover
  fen go one each to the largest remainders (ties: the stable order). The total is exactly
  ``min(pool, sum of entitlements)`` and nobody receives more than their entitlement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from service.money import from_fen, to_fen


@dataclass(frozen=True)
class Claim:
    """An approved, eligible application and what it is entitled to (its award)."""

    application_id: int
    submitted_at: datetime
    entitlement: Decimal


@dataclass(frozen=True)
class Share:
    application_id: int
    entitlement: Decimal
    amount: Decimal


def stable_order(claims: list[Claim]) -> list[Claim]:
    """Earlier ``submitted_at`` first, then the lower application id (the spec's tie-break)."""
    return sorted(claims, key=lambda c: (c.submitted_at, c.application_id))


def allocate_pool(claims: list[Claim], available: Decimal | None) -> list[Share]:
    """Each claim's share of ``available`` (None: no pool, everyone gets the entitlement).

    Largest remainder in integer fen: share_i = available × e_i / Σe exactly, as the whole fen
    ``floor`` plus a remainder ``r_i / Σe``; the leftover fen (fewer than the claims with a
    non-zero remainder) go to the largest remainders.
    """
    ordered = stable_order(claims)
    entitlements = [to_fen(c.entitlement) for c in ordered]
    if any(e < 0 for e in entitlements):
        raise ValueError("an entitlement cannot be negative")
    total = sum(entitlements)
    if available is None or total <= to_fen(available):
        return [Share(c.application_id, c.entitlement, c.entitlement) for c in ordered]
    target = to_fen(available)
    if target < 0:
        raise ValueError("the available pool cannot be negative")
    floors = [target * e // total for e in entitlements]
    remainders = [target * e % total for e in entitlements]
    leftover = target - sum(floors)
    # Largest remainder first; equal remainders in the stable order (index in ``ordered``).
    for index in sorted(range(len(ordered)), key=lambda i: (-remainders[i], i))[:leftover]:
        floors[index] += 1
    return [
        Share(c.application_id, c.entitlement, from_fen(fen))
        for c, fen in zip(ordered, floors, strict=True)
    ]
