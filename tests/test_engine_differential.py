"""durable_rules and the plain-Python oracle agree on every condition of every program.

Hundreds of generated applications per program per run (thousands in all), drawn near each
constant the conditions use (window ends, caps to the fen, ratios), with optional facts
sometimes missing. A disagreement, an unmatched fact or an engine fault fails the test.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.engine.durable_eval import DurableEvaluator
from service.engine.python_eval import PythonEvaluator
from service.rules.loader import load_rules
from tests.conftest import RULES
from tests.factgen import facts_for

BOOK = load_rules(RULES)
DURABLE = DurableEvaluator(BOOK.programs, BOOK.version)
ORACLE = PythonEvaluator()
TALLY: dict[str, list[int]] = {}


@pytest.mark.parametrize("program_id", sorted(BOOK.programs))
@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,  # reproducible in CI; the edges are enumerated on purpose anyway
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_engines_agree(program_id: str, data: st.DataObject) -> None:
    program = BOOK.programs[program_id]
    facts = data.draw(facts_for(program))
    expected = ORACLE.evaluate(program, facts)
    assert DURABLE.evaluate(program, facts) == expected
    tally = TALLY.setdefault(program_id, [0, 0])
    tally[0] += 1
    tally[1] += bool(expected.app) or any(s for v in expected.items.values() for s in v)


def test_generated_cases_fail_as_well_as_pass() -> None:
    """Agreement proves little if every generated application passed (or failed)."""
    if not TALLY:
        pytest.skip("run together with test_engines_agree")
    for program_id, (n, with_violation) in TALLY.items():
        assert 0 < with_violation < n, (program_id, n, with_violation, TALLY)
