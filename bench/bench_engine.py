"""Engine alone, one core: ipa2022-art19 applications (3 transactions) per second."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from common import ROOT, art19_body

from service.decision import decide
from service.engine.durable_eval import DurableEvaluator
from service.engine.facts import Context, extract
from service.engine.python_eval import PythonEvaluator
from service.rules.loader import load_rules


def rate(fn: Callable[[], object], seconds: float = 2.0, rounds: int = 5) -> float:
    results = []
    for _ in range(rounds):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / rounds:
            for _ in range(100):
                fn()
            n += 100
        results.append(n / (time.perf_counter() - start))
    return statistics.median(results)


def main() -> None:
    book = load_rules(ROOT / "rules")
    program = book.programs["ipa2022-art19"]
    application = program.form.model_validate(art19_body())
    facts = extract(program, application, Context())
    durable, oracle = DurableEvaluator(book.programs, book.version), PythonEvaluator()
    assert durable.evaluate(program, facts) == oracle.evaluate(program, facts)

    floor = rate(lambda: oracle.evaluate(program, facts))
    engine = rate(lambda: durable.evaluate(program, facts))
    whole = rate(lambda: decide(program, application, durable, book.version))
    print(f"plain Python conditions (floor)   {floor:10,.0f} applications/s")
    print(
        f"durable_rules conditions          {engine:10,.0f} applications/s  ({engine / floor:.3f} of floor)"
    )
    print(
        f"whole decision (facts+engine+award){whole:9,.0f} applications/s  ({whole / floor:.3f} of floor)"
    )
    print(f"target: >= 8,000/s for durable_rules -> {'met' if engine >= 8000 else 'NOT met'}")


if __name__ == "__main__":
    main()
