"""A big round, allocated: N approved ipa2022-art20 applications (default 10,000; one pledge loan
each, a tenth of them claiming a loan another application of the program claimed first) in one
round, on a fresh SQLite file (or ``--database-url`` PostgreSQL), through the claims ledger, the
pool and 第三条's fund. Prints the time of the allocation (the median of ``--rounds`` runs, the
first one recorded, the others returning the recorded run) and the ledger claims checked.

The rows are written straight to the tables (submitting 10,000 applications through the API
would take minutes and is not what is measured); the ledger rows are what submission writes.

    python bench/bench_allocation.py [N] [--rounds 3] [--database-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from common import ROOT

from service.auditlog import Actor
from service.db import migrate
from service.db import rounds as repo
from service.db.models import Application, Approval, ClaimRow, Evaluation, Round
from service.db.session import Database
from service.rules.loader import load_rules
from tests.dbsupport import bank, uscc

PROGRAM = "ipa2022-art20"


def populate(db: Database, count: int) -> int:
    """One round of ``count`` approved applications; returns the round id."""
    start = datetime(2023, 7, 20, 1, 30, tzinfo=UTC)
    with db.transaction() as session:
        round_ = Round(program_id=PROGRAM, name="bench", overrides={}, created_at=start)
        session.add(round_)
        session.flush()
        assert round_.id is not None
        apps, evals, approvals, claims = [], [], [], []
        for n in range(1, count + 1):
            body = bank(n, "1000.00")
            loan = body["loans"][0]
            duplicate = n % 10 == 0 and n > 1  # claims the loan of application n - 1
            if duplicate:
                loan = bank(n - 1, "1000.00")["loans"][0]
                body["loans"] = [loan]
            received = start + timedelta(seconds=n)
            apps.append(
                {
                    "id": n,
                    "program_id": PROGRAM,
                    "round_id": round_.id,
                    "applicant_uscc": uscc(n),
                    "request": body,
                    "request_hash": f"{n:064x}",
                    "submitted_at": received,
                    "received_at": received,
                    "channel": "portal",
                }
            )
            evals.append(
                {
                    "id": n,
                    "application_id": n,
                    "rules_version": "bench",
                    "eligible": not duplicate,
                    "eligible_on_own": True,
                    "award_fen": 0 if duplicate else 100_000,
                    "reasons": [],
                    "result": {},
                    "evaluated_at": received,
                }
            )
            approvals.append(
                {"application_id": n, "approved": True, "by_name": "bench", "received_at": received}
            )
            key = f"{loan['borrower']['uscc']}|{loan['loan_id']}|{loan['disbursed_amount']}"
            claims.append(
                {
                    "program_id": PROGRAM,
                    "item_list": "loans",
                    "item_index": 0,
                    "item_key": key,
                    "application_id": n,
                    "applicant_uscc": uscc(n),
                    "received_at": received,
                    "meets_conditions": True,
                    "counted": not duplicate,
                }
            )
        for table, rows in (
            (Application, apps),
            (Evaluation, evals),
            (Approval, approvals),
            (ClaimRow, claims),
        ):
            session.execute(sa.insert(table), rows)
        return round_.id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("count", nargs="?", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        migrate.upgrade(url)
        db = Database(url)
        book = load_rules(ROOT / "rules")
        round_id = populate(db, args.count)

        def program(pid: str):  # type: ignore[no-untyped-def]
            found = book.get(pid)
            assert found is not None
            return found

        def siblings(p):  # type: ignore[no-untyped-def]
            return sorted(q.id for q in book.programs.values() if q.policy == p.policy)

        times, cpu, result = [], [], {}
        for _ in range(args.rounds):
            began, began_cpu = time.perf_counter(), time.process_time()
            result = repo.allocate(
                db, program, siblings, round_id, Actor(None, "bench"), datetime.now(UTC)
            )
            times.append(time.perf_counter() - began)
            cpu.append(time.process_time() - began_cpu)
        db.dispose()
    print(
        f"{args.count} approved applications: allocated in {times[0]:.3f} s (first run, "
        f"recorded; CPU {cpu[0]:.3f} s), {statistics.median(times[1:] or times):.3f} s median "
        f"of the repeats (CPU {statistics.median(cpu[1:] or cpu):.3f} s); "
        f"{result['items_checked']} ledger claims checked, {len(result['allocations'])} lines, "
        f"{len(result['excluded'])} excluded, total {result['total']}"
    )


if __name__ == "__main__":
    main()
