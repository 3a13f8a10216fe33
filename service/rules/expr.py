"""The condition language of the rule files.

A condition is one readable line, for example::

    applicant.entity_type in ["university", "research_institute", "hospital"]
    item.contract_date in contract_window          # a window parameter: both ends included
    item.counterparty.registered_in_shanghai and item.counterparty.is_sme
    district in shanghai_districts                  # a value list of rules/_forms.yaml
    not context.disqualified
    self_funds >= self_funding_ratio * requested_amount

It is parsed once (with Python's own parser, then checked against a small whitelist) into the
tree below, type-checked against the program's request form, and then compiled by each engine
backend. Names are resolved in this order: ``item.…`` (inside an item group), ``context.…``
(facts the service supplies, such as the disqualification list), a parameter of the rule file,
and otherwise a field of the request form.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from service.rules.fields import FieldSpec, Scope
from service.rules.params import Parameter, Window


class ExprError(ValueError):
    """A condition that cannot be parsed or does not type-check; ``col`` is 0-based."""

    def __init__(self, message: str, col: int = 0) -> None:
        super().__init__(message)
        self.col = col


@dataclass(frozen=True)
class Aggregate:
    """``count(tech_managers, role="lead")``: how many items of a list (optionally with a value)."""

    list_name: str
    field: str | None = None
    value: Any = None


@dataclass(frozen=True)
class Ref:
    """A fact: a field of the application (scope ``app``) or of one item (scope ``item``), or a
    count over an item list."""

    scope: str
    path: tuple[str, ...]
    spec: FieldSpec
    aggregate: Aggregate | None = None

    @property
    def key(self) -> str:
        return "__".join(self.path)


@dataclass(frozen=True)
class Const:
    value: Any
    kind: str


@dataclass(frozen=True)
class Scaled:
    """``factor × ref``: the one arithmetic form conditions need (self-funding ratios)."""

    factor: Decimal
    ref: Ref


@dataclass(frozen=True)
class Cmp:
    left: Ref
    op: str  # == != < <= > >=
    right: Const | Scaled


@dataclass(frozen=True)
class Missing:
    """True when an optional fact was not supplied. Only produced by negation."""

    ref: Ref


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    part: Node


Node = Cmp | Missing | AllOf | AnyOf | Not

FLIP = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}
_AST_OPS = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
}
_ORDERED_KINDS = {"int", "money", "date", "datetime"}


def refs_of(node: Node) -> list[Ref]:
    """Every fact a condition reads (the fields it needs)."""
    if isinstance(node, Cmp):
        extra = [node.right.ref] if isinstance(node.right, Scaled) else []
        return [node.left, *extra]
    if isinstance(node, Missing):
        return [node.ref]
    if isinstance(node, Not):
        return refs_of(node.part)
    return [ref for part in node.parts for ref in refs_of(part)]


def negate(node: Node) -> Node:
    """Push a negation down to the comparisons (De Morgan), keeping "missing fails" semantics.

    A comparison on a fact that was not supplied is false, so its negation is true: that is
    ``missing or flipped comparison``.
    """
    if isinstance(node, Cmp):
        flipped = Cmp(node.left, FLIP[node.op], node.right)
        guards = [r for r in refs_of(node) if r.spec.optional]
        if not guards:
            return flipped
        return AnyOf((*(Missing(r) for r in guards), flipped))
    if isinstance(node, Missing):
        raise ExprError("internal: a Missing node is never negated")
    if isinstance(node, Not):
        return node.part
    if isinstance(node, AllOf):
        return AnyOf(tuple(negate(p) for p in node.parts))
    return _factor_missing(tuple(negate(p) for p in node.parts))


def _factor_missing(parts: tuple[Node, ...]) -> Node:
    """``(M or a) and (M or b)`` -> ``M or (a and b)``.

    Negating ``x in [16 districts]`` on an optional ``x`` would otherwise give a conjunction of
    16 disjunctions, which durable_rules expands into 2^16 rules and refuses (error 113).
    """
    if not parts or not all(isinstance(p, AnyOf) for p in parts):
        return AllOf(parts)
    common = [m for m in parts[0].parts if isinstance(m, Missing)]  # type: ignore[union-attr]
    common = [m for m in common if all(m in p.parts for p in parts)]  # type: ignore[union-attr]
    if not common:
        return AllOf(parts)
    rest = []
    for p in parts:
        remaining = tuple(q for q in p.parts if q not in common)  # type: ignore[union-attr]
        rest.append(remaining[0] if len(remaining) == 1 else AnyOf(remaining))
    return AnyOf((*common, AllOf(tuple(rest))))


class Compiler:
    """Parses condition text against one program's fields and parameters."""

    def __init__(
        self,
        app: Scope,
        params: dict[str, Parameter],
        item: Scope | None = None,
        enums: dict[str, tuple[Any, ...]] | None = None,
    ):
        self.app = app
        self.item = item
        self.params = params
        self.enums = enums or {}  # shared value lists of the form files (shanghai_districts)

    def compile(self, text: str) -> Node:
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise ExprError(f"cannot parse condition: {exc.msg}", (exc.offset or 1) - 1) from exc
        return self._bool(tree.body)

    # -- boolean structure ------------------------------------------------------------
    def _bool(self, node: ast.expr) -> Node:
        if isinstance(node, ast.BoolOp):
            parts = tuple(self._bool(v) for v in node.values)
            return AllOf(parts) if isinstance(node.op, ast.And) else AnyOf(parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return Not(self._bool(node.operand))
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Name | ast.Attribute):
            ref = self._ref(node)
            if ref.spec.kind != "bool":
                raise ExprError(f"'{ast.unparse(node)}' is not a yes/no field", node.col_offset)
            return Cmp(ref, "==", Const(True, "bool"))
        raise ExprError(f"unsupported expression '{ast.unparse(node)}'", node.col_offset)

    def _compare(self, node: ast.Compare) -> Node:
        if len(node.ops) != 1:
            raise ExprError("chain comparisons with 'and'", node.col_offset)
        op, right = node.ops[0], node.comparators[0]
        left = self._count(node.left) if isinstance(node.left, ast.Call) else self._ref(node.left)
        if isinstance(op, ast.In | ast.NotIn):
            inside = self._membership(left, right)
            return Not(inside) if isinstance(op, ast.NotIn) else inside
        if type(op) not in _AST_OPS:
            raise ExprError(f"unsupported operator in '{ast.unparse(node)}'", node.col_offset)
        symbol = _AST_OPS[type(op)]
        value = self._operand(right, left)
        if symbol not in ("==", "!=") and left.spec.kind not in _ORDERED_KINDS:
            raise ExprError(f"'{ast.unparse(node.left)}' cannot be ordered", node.col_offset)
        return Cmp(left, symbol, value)

    def _membership(self, left: Ref, right: ast.expr) -> Node:
        if isinstance(right, ast.List | ast.Tuple):
            options = tuple(Cmp(left, "==", self._literal(e, left)) for e in right.elts)
            if not options:
                raise ExprError("an empty list matches nothing", right.col_offset)
            return AnyOf(options)
        param = self._param(right)
        dotted = self._dotted(right)
        if param is None and dotted is not None and len(dotted) == 1 and dotted[0] in self.enums:
            # ``district in shanghai_districts``: the list written once, in a form file; the
            # same tree as the list written out, so every engine reads it the same way.
            values = self.enums[dotted[0]]
            if left.spec.choices is not None and set(values) - set(left.spec.choices):
                raise ExprError(
                    f"'{dotted[0]}' has values the field does not allow", right.col_offset
                )
            if any(value_kind(v) != left.spec.kind for v in values):
                raise ExprError(
                    f"'{dotted[0]}' holds values of another kind than the field", right.col_offset
                )
            return AnyOf(tuple(Cmp(left, "==", Const(v, left.spec.kind)) for v in values))
        if param is None or not isinstance(param.value, Window):
            raise ExprError(
                "'in' takes a list or a window parameter (or a value list of rules/_forms.yaml)",
                right.col_offset,
            )
        window = param.value
        if window.kind != left.spec.kind:
            raise ExprError(
                f"window '{ast.unparse(right)}' holds {window.kind}s, the field is a {left.spec.kind}",
                right.col_offset,
            )
        return AllOf(
            (
                Cmp(left, ">=", Const(window.start, window.kind)),
                Cmp(left, "<=", Const(window.end, window.kind)),
            )
        )

    # -- operands ----------------------------------------------------------------------
    def _operand(self, node: ast.expr, left: Ref) -> Const | Scaled:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            scale, field = self._const_or_none(node.left), node.right
            if scale is None:
                scale, field = self._const_or_none(node.right), node.left
            if scale is None or scale.kind not in ("ratio", "int"):
                raise ExprError("write products as 'ratio * field'", node.col_offset)
            ref = self._ref(field)
            if ref.spec.kind != left.spec.kind:
                raise ExprError(
                    "both sides of a product comparison must be the same kind", node.col_offset
                )
            return Scaled(Decimal(scale.value), ref)
        if isinstance(node, ast.Name | ast.Attribute) and self._param(node) is None:
            dotted = self._dotted(node) or []
            if dotted and dotted[0] not in ("true", "false"):
                ref = self._ref(node)  # another field: compared as 1 × field
                if ref.spec.kind != left.spec.kind:
                    raise ExprError(
                        "both sides of a comparison must be the same kind", node.col_offset
                    )
                return Scaled(Decimal(1), ref)
        return self._literal(node, left)

    def _const_or_none(self, node: ast.expr) -> Const | None:
        param = self._param(node)
        if param is not None and not isinstance(param.value, Window):
            return Const(param.value, param.kind)
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return Const(node.value, "int")
        return None

    def _literal(self, node: ast.expr, left: Ref) -> Const:
        param = self._param(node)
        if param is not None:
            if isinstance(param.value, Window) or param.kind != left.spec.kind:
                raise ExprError(
                    f"parameter '{ast.unparse(node)}' is a {param.kind}, the field is a {left.spec.kind}",
                    node.col_offset,
                )
            return Const(param.value, param.kind)
        value = self._python_literal(node)
        kind = left.spec.kind
        ok = {
            "bool": isinstance(value, bool),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "str": isinstance(value, str),
        }.get(kind, False)
        if not ok:
            raise ExprError(
                f"'{ast.unparse(node)}' is not a {kind}; money, dates and windows are parameters",
                node.col_offset,
            )
        if left.spec.choices is not None and value not in left.spec.choices:
            raise ExprError(
                f"'{value}' is not one of {sorted(map(str, left.spec.choices))}", node.col_offset
            )
        return Const(value, kind)

    @staticmethod
    def _python_literal(node: ast.expr) -> Any:
        if isinstance(node, ast.Name) and node.id in ("true", "false"):
            return node.id == "true"
        if isinstance(node, ast.Constant) and isinstance(node.value, bool | int | str):
            return node.value
        if (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant)
        ):
            raise ExprError("negative numbers are not used by any rule", node.col_offset)
        raise ExprError(f"'{ast.unparse(node)}' is not a value", node.col_offset)

    # -- names -------------------------------------------------------------------------
    @staticmethod
    def _dotted(node: ast.expr) -> list[str] | None:
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        parts.append(node.id)
        return parts[::-1]

    def _param(self, node: ast.expr) -> Parameter | None:
        dotted = self._dotted(node)
        if dotted and len(dotted) == 1 and dotted[0] in self.params:
            return self.params[dotted[0]]
        return None

    def _count(self, node: ast.Call) -> Ref:
        """``count(list)`` or ``count(list, field=value)``."""
        if not (isinstance(node.func, ast.Name) and node.func.id == "count") or len(node.args) != 1:
            raise ExprError(
                "the only function is count(list) or count(list, field=value)", node.col_offset
            )
        dotted = self._dotted(node.args[0])
        name = ".".join(dotted or [])
        items = self.app.lists.get(name)
        if items is None:
            raise ExprError(f"count(): the form has no item list '{name}'", node.col_offset)
        if len(node.keywords) > 1:
            raise ExprError("count() takes at most one field=value filter", node.col_offset)
        aggregate = Aggregate(name)
        key = f"count__{name}"
        if node.keywords:
            kw = node.keywords[0]
            spec = items.fields.get(kw.arg or "")
            if spec is None:
                raise ExprError(
                    f"count(): items of '{name}' have no field '{kw.arg}'", node.col_offset
                )
            value = self._literal(kw.value, Ref("item", (kw.arg or "",), spec)).value
            aggregate = Aggregate(name, kw.arg, value)
            key += f"__{kw.arg}__{value}"
        return Ref("app", (key,), FieldSpec("int"), aggregate)

    def _ref(self, node: ast.expr) -> Ref:
        dotted = self._dotted(node)
        if not dotted:
            raise ExprError(f"'{ast.unparse(node)}' is not a field", node.col_offset)
        if dotted[0] == "item":
            if self.item is None:
                raise ExprError(
                    "'item.…' is only used in an item group's conditions", node.col_offset
                )
            scope, path, where = self.item, tuple(dotted[1:]), "item"
        else:
            scope, path, where = self.app, tuple(dotted), "app"
        spec = scope.fields.get(".".join(path))
        if spec is None:
            raise ExprError(
                f"unknown field '{'.'.join(dotted)}' (the {scope.name} form has no such field)",
                node.col_offset,
            )
        return Ref(where, path, spec)


def value_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    if isinstance(value, Decimal):
        return "money"
    if isinstance(value, int):
        return "int"
    return "str"
