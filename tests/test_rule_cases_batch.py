"""Every rule case in tests/cases/ through the batch path (``decide_batch``, integer fen, as the
audit runs it): the same eligibility, failed conditions, counted items, amounts and tranches as
the case expects of the service (tests/test_rule_cases.py runs them through HTTP)."""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import Any

import pytest
from pydantic import ValidationError

from service.engine.facts import Context
from service.engine.polars_decide import (
    COUNTED,
    DUP,
    ELIGIBLE,
    ENTITLED,
    REC,
    SEQ,
    SHARE,
    compile_program,
    decide_batch,
    fail_col,
    tranche_col,
)
from service.engine.polars_facts import application_frames, application_rows
from service.money import to_fen
from tests.casefiles import Case, load_cases
from tests.conftest import DISQUALIFIED_USCC
from tests.test_polars_differential import BOOK

CASES = [c for c in load_cases() if c.expect.get("status", 200) == 200]


def _fen(text: str | None) -> int | None:
    return None if text is None else to_fen(Decimal(text))


@cache
def _batch(program_id: str) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """All of a program's cases in one batch: per case, its row and its items by list."""
    program = BOOK.programs[program_id]
    rows = []
    for index, case in enumerate(CASES):
        if case.program != program_id:
            continue
        try:
            application = program.form.model_validate(case.body)
        except ValidationError:
            continue  # a 200 case always validates; test_rule_cases says so
        uscc = getattr(getattr(application, "applicant", None), "uscc", None)
        context = Context(disqualified=uscc == DISQUALIFIED_USCC)
        app, items = application_rows(program, application, context)
        rows.append((str(index), app, items))
    apps, items = application_frames(program, rows)
    out, judged = decide_batch(compile_program(program), apps, items)
    by_rec = {r[REC]: r for r in out.to_dicts()}
    lists: dict[str, list[dict[str, Any]]] = {}
    name = program.plan.items
    if name is not None and name in judged:
        for r in judged[name].sort(REC, SEQ).to_dicts():
            lists.setdefault(r[REC], []).append(r)
    return by_rec, lists


@pytest.mark.parametrize("case", CASES, ids=[f"{c.file}: {c.name}" for c in CASES])
def test_case_through_the_batch_path(case: Case) -> None:
    program = BOOK.programs[case.program]
    expect = case.expect
    rows, lists = _batch(case.program)
    rec = str(CASES.index(case))
    row = rows[rec]
    if "eligible" in expect:
        assert row[ELIGIBLE] is expect["eligible"]
    if "failed" in expect:
        required = {c.id for c in program.required}
        want = {rule for rule in expect["failed"] or {} if rule in required}
        assert {cid for cid in required if row[fail_col(cid)]} == want
    if "amount" in expect:
        assert row[ENTITLED] == _fen(expect["amount"])
    if "items" in expect and program.plan.items is not None:
        got = lists.get(rec, [])
        assert len(got) == len(expect["items"])
        group = next(g for g in program.item_groups if g.list_name == program.plan.items)
        for item, want in zip(got, expect["items"], strict=True):
            assert item[COUNTED] is want["counted"], item
            if "amount" in want and item[COUNTED] and row[ELIGIBLE]:
                assert item[SHARE] == _fen(want["amount"]), item
            if "failed" in want:
                failed = {c.id for c in group.excluding if item[fail_col(c.id)]}
                if item[DUP] and group.duplicate is not None:
                    failed.add(group.duplicate.id)
                assert failed == set(want["failed"] or {}), item
    if "disbursement" in expect:
        paid = {stage: _fen(amount) for stage, _share, amount in expect["disbursement"]}
        for stage in ("first_year", "mid_term", "acceptance"):
            assert row[tranche_col(stage)] == paid.get(stage), stage


def test_every_program_with_cases_is_run_through_the_batch_path() -> None:
    programs = {c.program for c in CASES}
    assert programs == set(BOOK.programs)
    assert sum(len(_batch(p)[0]) for p in programs) == len(CASES)
