"""Allocating a funding round: quotas, then the program pool (shared/spec/programs.md, "Pool
allocation across a round" and "Quota").

Pure: no database, no HTTP. Works in integer fen, so every share is exact:

* hard quotas (不超过N) and per-district quotas (各区1家) are enforced by refusing: the result
  names the applications beyond the limit in a stable order (earlier ``submitted_at``, then lower
  application id), and the reviewers decide which approvals to withdraw. The service never picks
  winners itself.
* soft quotas (N家左右) only warn.
* the pool is spread pro rata to entitlement, each share ROUND_DOWN to the fen, and the leftover
  fen go one each to the largest remainders (ties: the stable order). The total is exactly
  ``min(pool, sum of entitlements)`` and nobody receives more than their entitlement.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from service.money import from_fen, to_fen
from service.rules.model import QuotaSpec


@dataclass(frozen=True)
class Claim:
    """An approved, eligible application and what it is entitled to (its award)."""

    application_id: int
    submitted_at: datetime
    entitlement: Decimal
    district: str | None = None  # per-district quotas only


@dataclass(frozen=True)
class Share:
    application_id: int
    entitlement: Decimal
    amount: Decimal


@dataclass(frozen=True)
class QuotaBreach:
    """A hard or per-district quota that the approved applications exceed."""

    kind: str  # hard | per_district
    limit: int
    count: int
    applications: list[int]  # every application the quota counts, in the stable order
    over: list[int]  # those beyond the limit in that order
    district: str | None = None


@dataclass(frozen=True)
class QuotaWarning:
    kind: str  # soft
    limit: int
    count: int


@dataclass
class QuotaCheck:
    breaches: list[QuotaBreach] = field(default_factory=list)
    warnings: list[QuotaWarning] = field(default_factory=list)


def stable_order(claims: list[Claim]) -> list[Claim]:
    """Earlier ``submitted_at`` first, then the lower application id (the spec's tie-break)."""
    return sorted(claims, key=lambda c: (c.submitted_at, c.application_id))


def check_quota(quota: QuotaSpec | None, claims: list[Claim]) -> QuotaCheck:
    result = QuotaCheck()
    if quota is None:
        return result
    ordered = stable_order(claims)
    if quota.kind == "soft":
        if len(ordered) > quota.limit:
            result.warnings.append(QuotaWarning("soft", quota.limit, len(ordered)))
    elif quota.kind == "hard":
        if len(ordered) > quota.limit:
            ids = [c.application_id for c in ordered]
            result.breaches.append(
                QuotaBreach("hard", quota.limit, len(ids), ids, ids[quota.limit :])
            )
    else:
        by_district: dict[str | None, list[int]] = defaultdict(list)
        for claim in ordered:
            by_district[claim.district].append(claim.application_id)
        for district, ids in sorted(by_district.items(), key=lambda kv: kv[0] or ""):
            if len(ids) > quota.limit:
                result.breaches.append(
                    QuotaBreach(
                        "per_district", quota.limit, len(ids), ids, ids[quota.limit :], district
                    )
                )
    return result


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
