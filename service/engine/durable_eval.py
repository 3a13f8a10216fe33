"""The durable_rules (Rete) backend, used the way it was measured to be safe on this machine.

See shared/notes/durable-rules.md. In short, durable_rules 2.0.28 (unmaintained since 2020):
- segfaults or returns wrong results when called from several threads, and its stock ``Host``
  starts timer threads that steal actions: one thread-free ``Host`` per process, one lock
  around each evaluation (the C engine holds the GIL, so threads would gain nothing anyway);
- holds at most 1,024 live states per ruleset: a fresh ``sid`` per evaluation and
  ``delete_state`` in a ``finally``;
- cannot redefine a ruleset in a process: rulesets are registered once, at start-up, under
  names that carry the rules version;
- raises ``MessageNotHandledException`` for a fact no rule matches (and has crashed in
  ``delete_state`` afterwards): every fact is matched by a "seen" rule, which also proves the
  engine looked at it;
- swallows exceptions inside actions into the state: an ``exception`` in the returned state is
  raised as ``EngineError``;
- compares JSON doubles: facts are booleans, strings and integers (fen, yyyymmdd,
  yyyymmddhhmmss); money arithmetic stays in Decimal outside the engine.
Actions cost ~25 µs each, so rules fire on violations only; passes are the complement.
"""

from __future__ import annotations

import copy
import itertools
import threading
from decimal import Decimal
from typing import Any

from durable import engine as durable_engine

from service.engine.base import EngineError, Violations
from service.engine.facts import Facts, encode
from service.rules.expr import AllOf, AnyOf, Cmp, Const, Missing, Node, Not, negate
from service.rules.program import Program

_DURABLE_OPS = {"!=": "$neq", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
_KIND = "t"  # fact field: which part of the application a fact is ("app" or "item:<list>")
_REF = "ref"  # fact field: "app" or "<list>[<index>]"
_SEEN = "seen"




def _factor(value: Decimal) -> int:
    if value != value.to_integral_value():
        raise EngineError(f"ratio {value} is not a whole number; the engine compares integers")
    return int(value)


def to_pattern(node: Node) -> dict[str, Any]:
    """A condition tree (already negated: it matches a violation) as a durable_rules pattern."""
    if isinstance(node, AllOf | AnyOf):
        # Flattened and without repeats: durable_rules refuses deeply nested patterns
        # (error 113), e.g. one existence guard per comparison of a 16-value list.
        op = "$and" if isinstance(node, AllOf) else "$or"
        terms: list[dict[str, Any]] = []
        for part in node.parts:
            pattern = to_pattern(part)
            for term in pattern[op] if set(pattern) == {op} else [pattern]:
                if term not in terms:
                    terms.append(term)
        return terms[0] if len(terms) == 1 else {op: terms}
    if isinstance(node, Missing):
        return {"$nex": {node.ref.key: 1}}
    if isinstance(node, Not):
        return to_pattern(negate(node.part))
    assert isinstance(node, Cmp)
    if isinstance(node.right, Const):
        right: Any = encode(node.right.value)
    else:
        right = {"$mul": {"$l": {"$m": node.right.ref.key}, "$r": _factor(node.right.factor)}}
    test = (
        {node.left.key: right}
        if node.op == "=="
        else {_DURABLE_OPS[node.op]: {node.left.key: right}}
    )
    guards = [{"$ex": {node.left.key: 1}}] if node.left.spec.optional else []
    if not isinstance(node.right, Const) and node.right.ref.spec.optional:
        guards.append({"$ex": {node.right.ref.key: 1}})
    return {"$and": [*guards, test]} if guards else test


def ruleset_for(program: Program) -> dict[str, Any]:
    """One ruleset per program: a "seen" rule per kind of fact, a rule per violation."""
    rules: dict[str, Any] = {}

    def add(name: str, kind: str, violation: Node | None) -> None:
        match: dict[str, Any] = {_KIND: kind}
        if violation is not None:
            match = {"$and": [match, to_pattern(violation)]}
        rules[name] = {"all": [{"m": match}], "run": name}

    add(f"{_SEEN}|app", "app", None)
    for cond in program.conditions:
        add(f"app|{cond.id}", "app", negate(cond.node))
    for group in program.item_groups:
        kind = f"item:{group.list_name}"
        add(f"{_SEEN}|{kind}", kind, None)
        for cond in group.conditions:
            add(f"{kind}|{cond.id}", kind, negate(cond.node))
    return rules


class _Recorder:
    """An action: note which rule fired for which fact. A bound method with one parameter,
    because durable_rules treats a two-parameter action as asynchronous."""

    def __init__(self, host: _Host, rule: str) -> None:
        self._host = host
        self._rule = rule

    def fire(self, c: Any) -> None:
        self._host.fired.append((self._rule, c.m[_REF]))


class _Host(durable_engine.Host):
    def __init__(self) -> None:
        self.fired: list[tuple[str, str]] = []
        super().__init__()

    def _run(self) -> None:
        """No timer threads: actions run synchronously in the evaluating thread."""

    def get_action(self, action_name: str) -> Any:
        return _Recorder(self, action_name).fire


# One host and one lock per process, whatever the number of evaluators: the C engine is not
# safe to enter from two threads, even through two hosts.
_LOCK = threading.Lock()
_HOST: _Host | None = None
_SIDS = itertools.count(1)


def _host() -> _Host:
    global _HOST
    if _HOST is None:
        _HOST = _Host()
    return _HOST


class DurableEvaluator:
    name = "durable_rules"

    def __init__(self, programs: dict[str, Program], version: str) -> None:
        self._names: dict[str, str] = {}
        with _LOCK:
            host = _host()
            for program in programs.values():
                name = f"{program.id}@{version}"
                self._names[program.id] = name
                if name in host._ruleset_directory:  # same name, same content: reuse
                    continue
                try:
                    # Ruleset() deletes "run" from the dict it is given: register a copy.
                    host.register_rulesets({name: copy.deepcopy(ruleset_for(program))})
                except Exception as exc:  # the C engine refuses some patterns (error 113)
                    raise EngineError(
                        f"{program.file}: durable_rules cannot compile {program.id}: {exc}"
                    ) from exc
        self._host = host

    def evaluate(self, program: Program, facts: Facts) -> Violations:
        name = self._names.get(program.id)
        if name is None:
            raise EngineError(f"program {program.id} was not compiled at start-up")
        messages = [{_KIND: "app", _REF: "app", **{k: encode(v) for k, v in facts.app.items()}}]
        refs = {"app"}
        for group in program.item_groups:
            for index, item in enumerate(facts.items.get(group.list_name, [])):
                ref = f"{group.list_name}[{index}]"
                refs.add(ref)
                messages.append(
                    {
                        _KIND: f"item:{group.list_name}",
                        _REF: ref,
                        **{k: encode(v) for k, v in item.items()},
                    }
                )
        with _LOCK:
            sid = str(next(_SIDS))
            for message in messages:
                message["sid"] = sid
            self._host.fired = []
            try:
                state = self._host.assert_facts(name, messages)
            except Exception as exc:  # the binding raises bare Exceptions for engine faults
                raise EngineError(f"durable_rules failed on {program.id}: {exc!r}") from exc
            finally:
                self._host.delete_state(name, sid)
            fired = self._host.fired
        if isinstance(state, dict) and state.get("exception"):
            raise EngineError(f"an action failed inside durable_rules: {state['exception']}")
        return self._violations(program, facts, fired, refs)

    @staticmethod
    def _violations(
        program: Program, facts: Facts, fired: list[tuple[str, str]], refs: set[str]
    ) -> Violations:
        seen = {ref for rule, ref in fired if rule.startswith(_SEEN)}
        if seen != refs:
            raise EngineError(f"durable_rules did not see {sorted(refs - seen)}")
        app: set[str] = set()
        items: dict[str, list[set[str]]] = {
            g.list_name: [set() for _ in facts.items.get(g.list_name, [])]
            for g in program.item_groups
        }
        for rule, ref in fired:
            scope, _, cond_id = rule.partition("|")
            if scope == _SEEN:
                continue
            if scope == "app":
                app.add(cond_id)
            else:
                group = scope.removeprefix("item:")
                index = int(ref[len(group) + 1 : -1])
                items[group][index].add(cond_id)
        return Violations(
            frozenset(app), {g: tuple(frozenset(s) for s in lst) for g, lst in items.items()}
        )
