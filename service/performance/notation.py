"""The bureau's target notation (绩效目标), read exactly: ``≥48.00(件)``, ``≤100.00(%)``,
``1000 次``, ``≥100 亿元``, ``≥4: 1``, ``≥ 市级支持额度``, ``提升``.

A target is an operator (≥ ≤ = > <; none written means "at least", as ``1000 次`` does in the
budget tables), a number and a unit; or an operator and another figure it is relative to
(``≥ 市级支持额度``); or a qualitative word (提升, 及时, 规范 …) that only a reviewer settles.

Units come in families, and only one family compares with itself:
- money: 元, 万元 (10^4 元), 亿元 (10^8 元), converted exactly;
- percent: ``%``;
- ratio: ``4:1`` (``4: 1``, ``4：1``), compared as left / right;
- counts: 次 家 件 项 个 人 名 所 (and the others the tables use: 人次 篇 份 册 条 场次 课时 天 …),
  each its own unit: 家 compares with 家, never with 项 (a count of institutions is not a count of
  projects); 名 is 人. A 万 or 亿 before a counting unit scales it (``≥3.00(万次)`` is 30,000 次).
An actual written without a unit (``52``) is read in the target's unit, as the tables write the
unit once in the target column. Anything else (家 against 亿元, % against 件) is an
``IncomparableUnits`` error: never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

Op = Literal[">=", "<=", "=", ">", "<"]
Family = Literal["money", "percent", "ratio", "count", "number"]

_OPS: dict[str, Op] = {
    "≥": ">=", ">=": ">=", "＞=": ">=", "不低于": ">=", "不少于": ">=", "至少": ">=",
    "≤": "<=", "<=": "<=", "＜=": "<=", "不超过": "<=", "不高于": "<=", "至多": "<=",
    "=": "=", "＝": "=", "==": "=",
    ">": ">", "＞": ">", "超过": ">", "高于": ">",
    "<": "<", "＜": "<", "低于": "<",
}  # fmt: skip
_OP_RE = re.compile("|".join(re.escape(k) for k in sorted(_OPS, key=len, reverse=True)))
# ASCII digits, thousands separators allowed; at most 15 digits before the point and 6 after:
# far inside Decimal's 28 significant digits even after 亿 scaling.
_NUMBER_RE = re.compile(r"([0-9]{1,3}(?:,[0-9]{3}){1,4}|[0-9]{1,15})(\.[0-9]{1,6})?")
_RATIO_RE = re.compile(r"^([0-9]{1,9}(?:\.[0-9]{1,6})?)\s*[:：]\s*([0-9]{1,9}(?:\.[0-9]{1,6})?)$")

MONEY_UNITS = {"元": Decimal(1), "万元": Decimal(10) ** 4, "亿元": Decimal(10) ** 8}
SCALES = {"万": Decimal(10) ** 4, "亿": Decimal(10) ** 8}
# Each counting unit is its own; synonyms map to one name.
COUNT_UNITS = {
    "次": "次", "家": "家", "件": "件", "项": "项", "个": "个", "人": "人", "名": "人", "所": "所",
    "人次": "人次", "篇": "篇", "份": "份", "册": "册", "条": "条", "场": "场", "场次": "场次",
    "课时": "课时", "天": "天", "批": "批", "期": "期", "套": "套",
}  # fmt: skip
# Words the bureau writes where a target is a judgment (2024 绩效目标表, 表3-1).
QUALITATIVE = (
    "提升", "增加", "降低", "提高", "增强", "减少", "及时", "规范", "完整", "有效", "可持续",
    "健全", "合格", "良好", "活跃", "有影响", "充分", "合理", "明确", "科学", "合规", "落实",
    "完成", "达标", "满意", "显著",
)  # fmt: skip
OPEN_QUOTE = "(（"
CLOSE_QUOTE = ")）"


class NotationError(ValueError):
    """A target or actual that cannot be read; the message in Chinese and English."""

    def __init__(self, message_zh: str, message_en: str) -> None:
        super().__init__(message_en)
        self.message_zh = message_zh
        self.message_en = message_en


class IncomparableUnits(NotationError):
    """Two values of different unit families (家 against 亿元)."""


@dataclass(frozen=True)
class Quantity:
    """A number with its unit as written, and its value in the family's base unit
    (元 for money, the counting unit for counts, percent points, left/right for a ratio)."""

    value: Decimal  # as written (``100`` of ``100 亿元``); a ratio: left / right
    unit: str  # as written, normalised: 亿元, %, 件, 万次; ":" for a ratio; "" when none
    family: Family
    factor: Decimal  # to the base unit: 10^8 for 亿元
    base_unit: str  # 元, %, 次, ":"; "" for a bare number

    @property
    def base(self) -> Decimal:
        return self.value * self.factor

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": _plain(self.value), "unit": self.unit}
        if self.base != self.value or self.base_unit != self.unit:
            out["base_value"], out["base_unit"] = _plain(self.base), self.base_unit
        return out

    def with_unit_of(self, other: Quantity) -> Quantity:
        """A bare number read in another quantity's unit (the table's unit)."""
        if self.family != "number" or other.family == "number":
            return self
        return Quantity(self.value, other.unit, other.family, other.factor, other.base_unit)


@dataclass(frozen=True)
class Target:
    kind: Literal["quantitative", "relative", "qualitative"]
    text: str
    op: Op | None = None
    implied_op: bool = False  # no operator written: a bare quantity means at least that
    quantity: Quantity | None = None
    reference: str | None = None  # relative: the figure it is compared with (市级支持额度)
    word: str | None = None  # qualitative

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "text": self.text, "op": self.op}
        if self.quantity is not None:
            out.update(self.quantity.public())
        if self.implied_op:
            out["implied_op"] = True
        if self.reference is not None:
            out["reference"] = self.reference
        if self.word is not None:
            out["word"] = self.word
        return out


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _normalise(text: str) -> str:
    # Full-width digits and signs as they come from Word tables.
    table = {ord(c): ord(c) - 0xFEE0 for c in "０１２３４５６７８９．％，"}
    return text.translate(table).replace("\u3000", " ").strip()


def _unreadable(text: str, what_zh: str, what_en: str) -> NotationError:
    return NotationError(
        f"无法识别{what_zh}：{text!r}（应如 ≥48.00(件)、≤100.00(%)、1000 次、100 亿元、≥4:1、提升）",
        f"Cannot read the {what_en} {text!r} (write e.g. ≥48.00(件), ≤100.00(%), 1000 次, "
        "100 亿元, ≥4:1, 提升)",
    )


def _unit(raw: str, text: str, what_zh: str, what_en: str) -> tuple[str, Family, Decimal, str]:
    """(unit as written, family, factor to the base unit, base unit)."""
    unit = raw.strip()
    if unit[:1] in OPEN_QUOTE and unit[-1:] in CLOSE_QUOTE:
        unit = unit[1:-1].strip()
    if unit == "":
        return "", "number", Decimal(1), ""
    if unit == "%":
        return "%", "percent", Decimal(1), "%"
    if unit in MONEY_UNITS:
        return unit, "money", MONEY_UNITS[unit], "元"
    scale = SCALES.get(unit[:1]) if len(unit) > 1 else None
    counted = unit[1:] if scale is not None else unit
    if counted in COUNT_UNITS:
        return unit, "count", scale or Decimal(1), COUNT_UNITS[counted]
    raise _unreadable(text, what_zh, what_en)


def parse_quantity(text: str, what_zh: str = "数值", what_en: str = "value") -> Quantity:
    """``100 亿元``, ``23.5%``, ``48.00(件)``, ``4:1``, ``52``."""
    clean = _normalise(text)
    ratio = _RATIO_RE.match(clean)
    if ratio:
        left, right = Decimal(ratio.group(1)), Decimal(ratio.group(2))
        if right == 0:
            raise _unreadable(text, what_zh, what_en)
        return Quantity(left / right, ":", "ratio", Decimal(1), ":")
    number = _NUMBER_RE.match(clean)
    if number is None:
        raise _unreadable(text, what_zh, what_en)
    value = Decimal(number.group(0).replace(",", ""))
    unit, family, factor, base_unit = _unit(clean[number.end() :], text, what_zh, what_en)
    return Quantity(value, unit, family, factor, base_unit)


def parse_target(text: str) -> Target:
    clean = _normalise(text)
    if not clean:
        raise _unreadable(text, "目标值", "target")
    op_match = _OP_RE.match(clean)
    op: Op | None = _OPS[op_match.group(0)] if op_match else None
    rest = clean[op_match.end() :].strip() if op_match else clean
    if op is None and rest in QUALITATIVE:
        return Target("qualitative", text, word=rest)
    if rest[:1].isdigit():
        quantity = parse_quantity(rest, "目标值", "target")
        return Target("quantitative", text, op or ">=", op is None, quantity)
    if op is not None and rest and not any(ch.isdigit() for ch in rest) and len(rest) <= 40:
        return Target("relative", text, op, reference=rest)
    raise _unreadable(text, "目标值", "target")


@dataclass(frozen=True)
class Actual:
    """A reported figure: a quantity (perhaps only a bound, ``≥1102.8万元``) or, for a
    qualitative target, the reviewer-facing text as reported (``较合理``)."""

    text: str
    quantity: Quantity | None = None
    bound: Op | None = None  # ">=" / "<=": the report says at least / at most this

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text}
        if self.quantity is not None:
            out.update(self.quantity.public())
        if self.bound is not None:
            out["bound"] = self.bound
        return out


def parse_actual(text: str) -> Actual:
    clean = _normalise(text)
    op_match = _OP_RE.match(clean)
    bound = _OPS[op_match.group(0)] if op_match else None
    if bound not in (None, ">=", "<="):
        raise _unreadable(text, "实际值", "actual")
    rest = clean[op_match.end() :].strip() if op_match else clean
    return Actual(text, parse_quantity(rest, "实际值", "actual"), bound)


def comparable(
    target: Quantity, actual: Quantity, what_zh: str = "实际值", what_en: str = "actual"
) -> tuple[Quantity, Quantity]:
    """Both in one unit family (a bare number takes the other's unit); IncomparableUnits when
    the families, or the counting units, differ."""
    actual = actual.with_unit_of(target)
    target = target.with_unit_of(actual)
    same = target.family == actual.family and (
        actual.family != "count" or target.base_unit == actual.base_unit
    )
    if not same:
        t_unit, a_unit = target.unit or "无单位", actual.unit or "无单位"
        raise IncomparableUnits(
            f"{what_zh}的单位 {a_unit} 与目标值的单位 {t_unit} 不可比较",
            f"The {what_en}'s unit {a_unit} cannot be compared with the target's unit {t_unit}",
        )
    return target, actual


def holds(op: Op, left: Decimal, right: Decimal) -> bool:
    return {
        ">=": left >= right,
        "<=": left <= right,
        "=": left == right,
        ">": left > right,
        "<": left < right,
    }[op]
