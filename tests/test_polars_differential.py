"""The batch (polars) backend and the per-application engine agree: on every condition of every
program for generated facts, and on eligibility, counted items and the award to the fen for
generated applications — at least 200 a program — on eligibility, counted items, each item's
amount, the award and the tranches to the fen (``decide`` with the plain-Python oracle, which
itself agrees with durable_rules: tests/test_engine_differential.py)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from service.decision import decide
from service.engine.facts import Context, Facts
from service.engine.polars_decide import (
    COUNTED,
    ELIGIBLE,
    ENTITLED,
    REC,
    SEQ,
    SHARE,
    compile_program,
    decide_batch,
    fail_col,
    holds_col,
    tranche_col,
)
from service.engine.polars_facts import application_frames, application_rows, frame
from service.engine.python_eval import PythonEvaluator, holds
from service.money import to_fen
from service.rules.loader import load_rules
from tests.appgen import body_for
from tests.conftest import RULES
from tests.factgen import facts_for

BOOK = load_rules(RULES)
ORACLE = PythonEvaluator()
PROGRAMS = sorted(BOOK.programs)
TIERS = {"tier_amounts": {1: Decimal("50000.00"), 2: Decimal("30000.01"), 3: Decimal("0.00")}}
# program -> [applications, eligible with an amount > 0, ineligible, with tranches]
TALLY: dict[str, list[int]] = {}
APPLICATIONS = 200  # at least, per program
PROOF = settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
# Small batches, many of them: a list of 40 whole bodies overruns hypothesis' buffer (most
# draws were thrown away); 40 batches of 6-10 give 240-400 applications a program.
DECISIONS = settings(PROOF, max_examples=40)


def _facts_frames(
    program_id: str, batch: list[Facts]
) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    program = BOOK.programs[program_id]
    apps = frame(
        [{REC: str(i), **f.app} for i, f in enumerate(batch)], program.facts, {REC: pl.String()}
    )
    items = {
        g.list_name: frame(
            [
                {REC: str(i), SEQ: s, **item}
                for i, f in enumerate(batch)
                for s, item in enumerate(f.items.get(g.list_name, []))
            ],
            g.facts,
            {REC: pl.String(), SEQ: pl.Int64()},
        )
        for g in program.item_groups
    }
    return apps, items


@pytest.mark.parametrize("program_id", PROGRAMS)
@PROOF
@given(data=st.data())
def test_conditions_agree(program_id: str, data: st.DataObject) -> None:
    program = BOOK.programs[program_id]
    batch = data.draw(st.lists(facts_for(program), min_size=20, max_size=40))
    apps, items = _facts_frames(program_id, batch)
    cp = compile_program(program)
    out, judged = decide_batch(cp, apps, items)
    rows = out.sort(REC, descending=False).to_dicts()
    by_rec = {r[REC]: r for r in rows}
    for i, facts in enumerate(batch):
        row = by_rec[str(i)]
        expected = ORACLE.evaluate(program, facts)
        for cond in program.conditions:
            assert row[holds_col(cond.id)] == holds(cond.node, facts.app), (cond.id, facts.app)
            assert row[fail_col(cond.id)] == (cond.id in expected.app), (cond.id, facts.app)
        for g in program.item_groups:
            got = {(r[REC], r[SEQ]): r for r in judged[g.list_name].to_dicts() if r[REC] == str(i)}
            for s, item in enumerate(facts.items.get(g.list_name, [])):
                for cond in g.conditions:
                    r = got[(str(i), s)]
                    assert r[holds_col(cond.id)] == holds(cond.node, item), (cond.id, item)
                    assert r[fail_col(cond.id)] == (cond.id in expected.items[g.list_name][s])


def _applications(program_id: str, bodies: list[dict[str, Any]]) -> list[Any]:
    program = BOOK.programs[program_id]
    out = []
    for body in bodies:
        try:
            out.append(program.form.model_validate(body))
        except ValidationError:
            continue
    return out


@pytest.mark.parametrize("program_id", PROGRAMS)
@DECISIONS
@given(data=st.data())
def test_decisions_and_amounts_agree(program_id: str, data: st.DataObject) -> None:
    program = BOOK.programs[program_id]
    bodies = data.draw(st.lists(body_for(program), min_size=6, max_size=10))
    applications = _applications(program_id, bodies)
    disqualified = data.draw(
        st.lists(st.booleans(), min_size=len(applications), max_size=len(applications))
    )
    for overrides in (None, TIERS) if program.plan.tiers else (None,):
        rows = []
        decisions = []
        for i, (application, dq) in enumerate(zip(applications, disqualified, strict=True)):
            context = Context(disqualified=dq)
            app, items = application_rows(program, application, context)
            rows.append((str(i), app, items))
            decisions.append(decide(program, application, ORACLE, "v", context, overrides))
        apps, items = application_frames(program, rows)
        out, judged = decide_batch(compile_program(program, overrides), apps, items)
        by_rec = {r[REC]: r for r in out.to_dicts()}
        for i, decision in enumerate(decisions):
            row = by_rec[str(i)]
            assert row[ELIGIBLE] == decision.eligible, (i, decision.reasons)
            amount = decision.award.amount
            assert row[ENTITLED] == (None if amount is None else to_fen(amount)), i
            tally = TALLY.setdefault(program_id, [0, 0, 0, 0])
            tally[0] += overrides is None
            tally[1] += bool(decision.eligible and amount)
            tally[2] += not decision.eligible
            if decision.disbursement is not None:
                tally[3] += bool(amount)
                paid = {t.stage: to_fen(t.amount) for t in decision.disbursement}
                for stage in ("first_year", "mid_term", "acceptance"):
                    assert row[tranche_col(stage)] == paid.get(stage), (i, stage)
            else:
                assert not any(k.startswith("tranche:") for k in row), i
            if decision.items is not None:
                name = program.plan.items
                assert name is not None
                got = sorted(
                    (r for r in judged[name].to_dicts() if r[REC] == str(i)), key=lambda r: r[SEQ]
                )
                assert [r[COUNTED] for r in got] == [it.counted for it in decision.items]
                if decision.eligible:
                    for r, it in zip(got, decision.items, strict=True):
                        if it.counted:
                            assert r[SHARE] == to_fen(it.amount)


def test_generated_applications_are_paid_as_well_as_refused() -> None:
    """Agreement on amounts proves little if no generated application was paid (or refused)."""
    if not TALLY:
        pytest.skip("run together with test_decisions_and_amounts_agree")
    assert set(TALLY) == set(PROGRAMS)
    for program_id, (n, paid, refused, staged) in TALLY.items():
        assert n >= APPLICATIONS and paid > 0 and refused > 0, (program_id, n, paid, refused)
        if BOOK.programs[program_id].plan.disbursement is not None:
            assert staged > 0, program_id
