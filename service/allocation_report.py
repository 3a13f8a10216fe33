"""What an allocation tells the reviewer, in Chinese and English: why an application is left
out, and what happened to the money (shares cut pro rata, the pool or 第三条's fund exhausted).

Pure: texts and the figures they quote, nothing else.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

from service.money import fmt

EXCLUDED: dict[str, tuple[str, str]] = {
    "not_approved": ("未获评审批准（或已撤回）", "not approved by the reviewers (or withdrawn)"),
    "not_eligible": ("不符合申报条件", "does not meet the conditions"),
    "disqualified": (
        "申报单位已列入第二十六条名单",
        "the applicant is on the 第二十六条 list",
    ),
    "no_entitlement": (
        "本轮未确定奖补金额（第二十一条等次金额）",
        "no amount is set for it in this round (第二十一条's tier amounts)",
    ),
    "once_per_unit": (
        "一次性予以每家：本单位在本项目已有获奖补的申报",
        "paid once per organisation (一次性): another application of this organisation is paid",
    ),
    "items_claimed_elsewhere": (
        "所申领的各项均已由本项目更早的申报申领（第二十五条 实绩实奖）",
        "every item it claims is paid to an earlier application of the program (第二十五条)",
    ),
}


def excluded(application_id: int, reason: str, **extra: Any) -> dict[str, Any]:
    zh, en = EXCLUDED[reason]
    return {
        "application_id": application_id,
        "reason": reason,
        "message_zh": zh,
        "message_en": en,
        **extra,
    }


def _warning(rule: str, article: str, zh: str, en: str, **extra: Any) -> dict[str, Any]:
    return {"rule": rule, "article": article, "message_zh": zh, "message_en": en, **extra}


def nothing_approved() -> dict[str, Any]:
    return _warning(
        "nothing-approved",
        "第二十五条",
        "本轮没有已批准且符合条件的申报，未记录分配",
        "No approved, eligible application in this round: nothing is recorded",
    )


def pro_rata(entitlement: Decimal, total: Decimal, article: str) -> dict[str, Any]:
    ratio = (total / entitlement).quantize(Decimal("0.000001"), rounding=ROUND_DOWN)
    return _warning(
        "pro-rata",
        article,
        f"应得合计{fmt(entitlement)}元超过可分配额{fmt(total)}元，各申报按比例{ratio}分配",
        f"The entitlements ({fmt(entitlement)}) exceed what can be allocated ({fmt(total)}): "
        f"each share is cut pro rata, ratio {ratio}",
        ratio=str(ratio),
    )


def exhausted(kind: str, article: str, limit: Decimal) -> dict[str, Any]:
    if kind == "fund":
        zh = f"专项资金（{fmt(limit)}元）已分配完毕"
        en = f"The special fund ({fmt(limit)} yuan) is exhausted"
    else:
        zh = f"本项目奖补总额（{fmt(limit)}元）已分配完毕"
        en = f"The program pool ({fmt(limit)} yuan) is exhausted"
    return _warning(f"{kind}-exhausted", article, zh, en, limit=fmt(limit))
