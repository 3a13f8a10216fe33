from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.config import Settings
from service.main import create_app
from service.rules.loader import RuleBook, load_rules
from tests.authsupport import authorise

RULES = Path(__file__).resolve().parent.parent / "rules"
# The organisation the test disqualification list names (第二十六条); cases use it.
DISQUALIFIED_USCC = "91310000MA1FL9Y9Y8"


@pytest.fixture(scope="session")
def book() -> RuleBook:
    return load_rules(RULES)


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    folder = tmp_path_factory.mktemp("dq")
    listing = folder / "disqualified.txt"
    listing.write_text(f"# 第二十六条 test list\n{DISQUALIFIED_USCC}\n", encoding="utf-8")
    # Its own SQLite file, migrated and seeded with the list when the client starts the app.
    return create_app(
        Settings(
            rules_dir=RULES,
            disqualified_file=listing,
            database_url=f"sqlite:///{folder / 'service.db'}",
            auto_migrate=True,
            anonymous_requests_per_minute=0,  # the rate limits have their own tests
            **{
                f"{role}_requests_per_minute": 0
                for role in ("portal", "reviewer", "auditor", "admin")
            },
        )
    )


@pytest.fixture(scope="session")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        authorise(c, app)
        yield c
