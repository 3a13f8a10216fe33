"""Each program's Swagger example (rules/<policy>/examples/<program id>.yaml), as the app serves it."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from service.api.openapi import program_examples
from service.rules.loader import load_rules
from tests.conftest import RULES


@cache
def _loaded() -> dict[str, dict[str, Any]]:
    return program_examples(load_rules(RULES))


def examples() -> dict[str, dict[str, Any]]:
    """program id -> {"summary", "value"}: a fresh copy each call, so a test that edits an
    example for its own case does not change it for the tests after it."""
    return copy.deepcopy(_loaded())
