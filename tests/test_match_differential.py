"""/v1/match's three-valued answers agree with the full evaluation on every completion.

For each program: a whole application is generated (tests/appgen.py), a random subset of its
fields is hidden, and match runs on what is left. Then, for completions of the partial profile
(the original application, and the hidden application-level fields taken from a second drawn
application), the full decision (``decide`` with the plain-Python oracle) must agree:

- match ``eligible`` => every completion is eligible;
- match ``ineligible`` => every completion is ineligible, and each condition match names failed
  fails there too;
- ``needs`` lists only hidden fields; giving back exactly those fields decides the program
  (and as the original does); and each fact a condition waits for is one the condition's value
  depends on for some completion (brute force over the values the conditions compare with).
"""

from __future__ import annotations

import copy
import itertools
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from service.decision import decide
from service.engine.facts import SHANGHAI, Context
from service.engine.python_eval import PythonEvaluator, holds
from service.engine.tristate import Span, needed, value
from service.match import PartialFacts, match, partial_facts
from service.rules.expr import AllOf, AnyOf, Cmp, Const, Missing, Node, Not, Ref
from service.rules.loader import load_rules
from service.rules.program import Program
from service.schemas.partial import partial_model
from tests.appgen import USCCS, body_for
from tests.conftest import RULES

BOOK = load_rules(RULES)
ORACLE = PythonEvaluator()
DISQUALIFIED = {USCCS[0]}  # one of the generated organisations is on 第二十六条's list
TALLY: dict[str, dict[str, int]] = {}
BODIES = {pid: body_for(p, max_items=3) for pid, p in BOOK.programs.items()}


def _leaves(body: dict[str, Any], prefix: str = "") -> list[str]:
    """Paths that can be hidden: values, whole lists, and the values of each list item."""
    out: list[str] = []
    for key, val in body.items():
        path = f"{prefix}{key}"
        if isinstance(val, dict):
            out += _leaves(val, f"{path}.")
        elif isinstance(val, list):
            out.append(path)
            for i, item in enumerate(val):
                out += _leaves(item, f"{path}[{i}].")
        else:
            out.append(path)
    return out


def _split(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in path.split("."):
        name, _, rest = piece.partition("[")
        parts.append(name)
        if rest:
            parts.append(int(rest.rstrip("]")))
    return parts


def _take(body: Any, path: str) -> tuple[bool, Any]:
    node = body
    for part in _split(path):
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False, None
    return True, node


def _drop(body: Any, path: str) -> None:
    *head, last = _split(path)
    node = body
    for part in head:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(node, dict):
        node.pop(last, None)


def _put(body: Any, path: str, val: Any) -> None:
    *head, last = _split(path)
    node = body
    for part in head:
        node = node.setdefault(part, {}) if isinstance(part, str) else node[part]
    node[last] = copy.deepcopy(val)


def _full(program: Program, body: dict[str, Any]) -> Any:
    try:
        return program.form.model_validate(body)
    except ValidationError:
        return None


def _decide(program: Program, application: Any) -> Any:
    dq = application.applicant.uscc in DISQUALIFIED
    return decide(program, application, ORACLE, "test", Context(disqualified=dq))


def _match(program: Program, body: dict[str, Any], on: Any) -> tuple[Any, PartialFacts]:
    partial = partial_model(program.form).model_validate(body)
    uscc = getattr(partial.applicant, "uscc", None) if partial.applicant is not None else None  # type: ignore[attr-defined]
    facts = partial_facts(program, partial, on, None if uscc is None else uscc in DISQUALIFIED)
    return match(program, facts, on), facts


@pytest.mark.parametrize("program_id", sorted(BOOK.programs))
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking these bodies takes minutes
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(data=st.data())
def test_match_agrees_with_every_completion(program_id: str, data: st.DataObject) -> None:
    program = BOOK.programs[program_id]
    body = data.draw(BODIES[program_id])
    original = _full(program, body)
    assume(original is not None)
    on = original.submitted_at.astimezone(SHANGHAI).date()
    paths = _leaves(body)
    share = data.draw(st.sampled_from([0, 1, 5]), "tenths hidden")  # none, a few, half
    hidden = [p for p in paths if data.draw(st.integers(0, 9)) < share]
    partial_body = copy.deepcopy(body)
    for path in sorted(hidden, key=len, reverse=True):
        _drop(partial_body, path)
    result, facts = _match(program, partial_body, on)

    completions = [original]
    other = _full(program, data.draw(BODIES[program_id]))
    if other is not None:
        # The hidden application-level values of another application (submitted the same day:
        # the day ``on`` stands for); items stay the original's.
        other_body = other.model_dump(mode="json", exclude_none=True)
        mixed = copy.deepcopy(partial_body)
        for path in hidden:
            if "[" in path or path == "submitted_at":
                continue
            found, val = _take(other_body, path)
            if found and not isinstance(val, list):
                _put(mixed, path, val)
            elif found:
                _put(mixed, path, _take(body, path)[1])
        for path in hidden:
            if "[" in path and not _take(mixed, path)[0]:
                _put(mixed, path, _take(body, path)[1])
        if "submitted_at" in hidden:
            _put(mixed, "submitted_at", body["submitted_at"])
        completion = _full(program, mixed)
        if completion is not None:
            completions.append(completion)

    tally = TALLY.setdefault(program_id, {"eligible": 0, "ineligible": 0, "needs": 0})
    tally[result.status] += 1
    for application in completions:
        decision = _decide(program, application)
        if result.status == "eligible":
            assert decision.eligible, (partial_body, application)
        elif result.status == "ineligible":
            assert not decision.eligible, (partial_body, application)
            failed_there = {r.rule for r in decision.reasons if not r.passed}
            assert {f.rule for f in result.failed} <= failed_there, (partial_body, application)

    if result.status != "needs":
        return
    for need in result.needs:
        # Not known in the partial profile (the submission time: only its day is known; a list
        # named for a count: one of its items lacks the field counted by).
        known, _ = _take(partial_body, need)
        assert not known or need == "submitted_at" or need in program.scope.lists, need
    _check_dependence(program, facts)
    if not all(_take(body, need)[0] for need in result.needs):
        return  # an optional field the original leaves out: "not told" stays unknown
    # Giving back exactly what it needs decides it, as the original is decided.
    restored = copy.deepcopy(partial_body)
    for need in result.needs:
        _put(restored, need, _take(body, need)[1])
    again, _ = _match(program, restored, on)
    assert again.status != "needs", (result.needs, restored)
    assert (again.status == "eligible") == _decide(program, original).eligible


# -- each waited-for fact matters: brute force over the values the condition compares with --
def _candidates(node: Node, ref: Ref, facts: dict[str, Any]) -> list[Any]:
    known = facts.get(ref.key)
    out: list[Any] = [None]  # left out (an optional fact may stay absent)
    if isinstance(known, Span):
        out = [known.low, known.high]
    for cmp in _cmps(node):
        keys = [cmp.left.key] + ([] if isinstance(cmp.right, Const) else [cmp.right.ref.key])
        if ref.key not in keys:
            continue
        if isinstance(cmp.right, Const) and cmp.left.key == ref.key:
            out += _around(cmp.right.value)
        else:  # ``self_funds >= ratio * requested_amount``: around the other side's value
            out += [Decimal(v) for v in ("0.00", "1.00", "100.00", "10000.00", "10000000.00")]
            assert not isinstance(cmp.right, Const)
            left, right = facts.get(cmp.left.key), facts.get(cmp.right.ref.key)
            if ref.key == cmp.left.key and isinstance(right, Decimal):
                out += _around((cmp.right.factor * right).quantize(Decimal("0.01")))
            elif ref.key != cmp.left.key and isinstance(left, Decimal):
                out += _around((left / cmp.right.factor).quantize(Decimal("0.01")))
    if ref.spec.kind == "bool":
        out += [True, False]
    if ref.spec.choices is not None:
        out += list(ref.spec.choices)
    if isinstance(known, Span):
        out = [v for v in out if v is not None and known.low <= v <= known.high]
    return out


def _around(v: Any) -> list[Any]:
    if isinstance(v, bool | str):
        return [v]
    if isinstance(v, Decimal):
        return [v - Decimal("0.01"), v, v + Decimal("0.01")]
    if isinstance(v, int):
        return [v - 1, v, v + 1]
    if isinstance(v, datetime):
        return [v - timedelta(seconds=1), v, v + timedelta(seconds=1)]
    return [v - timedelta(days=1), v, v + timedelta(days=1)]


def _cmps(node: Node) -> list[Cmp]:
    if isinstance(node, Cmp):
        return [node]
    if isinstance(node, Missing):
        return []
    if isinstance(node, Not):
        return _cmps(node.part)
    assert isinstance(node, AllOf | AnyOf)
    return [c for p in node.parts for c in _cmps(p)]


def _depends(node: Node, facts: dict[str, Any], ref: Ref) -> bool:
    waiting = needed(node, facts)
    others = [r for r in waiting if r.key != ref.key]
    domains = [_candidates(node, r, facts) for r in others]
    mine = _candidates(node, ref, facts)
    base = {k: v for k, v in facts.items() if not isinstance(v, Span)}
    for combo in itertools.islice(itertools.product(*domains), 500):
        seen = set()
        for candidate in mine:
            full = dict(base)
            for r, v in zip(others, combo, strict=True):
                if v is not None:
                    full[r.key] = v
            if candidate is not None:
                full[ref.key] = candidate
            seen.add(holds(node, full))
            if len(seen) == 2:
                return True
    return False


def _check_dependence(program: Program, facts: PartialFacts) -> None:
    for cond in program.conditions:
        if cond.severity == "error" and value(cond.node, facts.app) is None:
            for ref in needed(cond.node, facts.app):
                assert _depends(cond.node, facts.app, ref), (cond.id, ref.key, facts.app)
    for group in program.item_groups:
        for item in facts.items.get(group.list_name) or []:
            for cond in group.conditions:
                if cond.severity == "error" and value(cond.node, item) is None:
                    for ref in needed(cond.node, item):
                        assert _depends(cond.node, item, ref), (cond.id, ref.key, item)


def test_generated_profiles_reach_every_answer() -> None:
    """Agreement proves little if match always said "needs" (or never "eligible")."""
    if not TALLY:
        pytest.skip("run together with test_match_agrees_with_every_completion")
    for program_id, counts in TALLY.items():
        assert all(counts.values()), (program_id, counts)  # every program, every answer
