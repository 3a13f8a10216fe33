"""durable_rules used from many threads and for many evaluations: always right, never a crash,
memory flat. (The hazards are measured in shared/notes/durable-rules.md.)"""

from __future__ import annotations

import random
import resource
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from service.engine.base import Violations
from service.engine.durable_eval import DurableEvaluator
from service.engine.facts import Facts
from service.engine.python_eval import PythonEvaluator
from service.rules.loader import load_rules
from tests.conftest import RULES
from tests.factgen import facts_for

BOOK = load_rules(RULES)
DURABLE = DurableEvaluator(BOOK.programs, BOOK.version)
ORACLE = PythonEvaluator()


def _generated(program_id: str) -> list[Facts]:
    """A fixed set of generated applications for one program (derandomized)."""
    collected: list[Facts] = []

    @settings(
        max_examples=60,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(facts_for(BOOK.programs[program_id]))
    def collect(facts: Facts) -> None:
        collected.append(facts)

    collect()
    return collected


def _workload(n: int, seed: int) -> list[tuple[str, Facts, Violations]]:
    """n applications across all programs, each with the oracle's answer."""
    rng = random.Random(seed)
    pools = {pid: _generated(pid) for pid in sorted(BOOK.programs)}
    out = []
    for _ in range(n):
        program_id = rng.choice(sorted(pools))
        facts = rng.choice(pools[program_id])
        out.append((program_id, facts, ORACLE.evaluate(BOOK.programs[program_id], facts)))
    return out


def _rss_kb() -> int:
    with Path("/proc/self/statm").open() as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024


@pytest.mark.slow
def test_sixteen_threads_every_result_correct() -> None:
    work = _workload(200, seed=1)
    errors: list[str] = []
    per_thread = 2000

    def run(index: int) -> None:
        rng = random.Random(index)
        try:
            for _ in range(per_thread):
                program_id, facts, expected = rng.choice(work)
                got = DURABLE.evaluate(BOOK.programs[program_id], facts)
                if got != expected:
                    errors.append(f"{program_id}: {got} != {expected}")
        except Exception as exc:  # an engine fault in a thread must fail the test
            errors.append(repr(exc))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@pytest.mark.slow
def test_soak_200k_evaluations_memory_flat() -> None:
    work = _workload(200, seed=2)
    for program_id, facts, _ in work * 50:  # warm up: 10,000 evaluations
        DURABLE.evaluate(BOOK.programs[program_id], facts)
    before = _rss_kb()
    wrong = 0
    for i in range(200_000):
        program_id, facts, expected = work[i % len(work)]
        wrong += DURABLE.evaluate(BOOK.programs[program_id], facts) != expected
    grown = _rss_kb() - before
    assert wrong == 0
    # durable_rules keeps one state per sid; leaking them would grow by hundreds of MB here.
    assert grown < 8 * 1024, f"RSS grew by {grown} kB over 200,000 evaluations"
