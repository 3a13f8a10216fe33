"""Each program's Swagger example (rules/<policy>/examples/<program id>.yaml), as the app serves it."""

from __future__ import annotations

from functools import cache
from typing import Any

from service.api.openapi import program_examples
from service.rules.loader import load_rules
from tests.conftest import RULES


@cache
def examples() -> dict[str, dict[str, Any]]:
    """program id -> {"summary", "value"}."""
    return program_examples(load_rules(RULES))
