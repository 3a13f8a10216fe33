"""The command-line help says true things: a valid example USCC, the audit's columns."""

from __future__ import annotations

import re

import pytest

from service.audit.cli import parser as audit_parser
from service.audit.columns import AUDIT_FIELDS
from service.auth import cli as auth_cli
from service.schemas.identifiers import uscc_check_char


def test_the_key_commands_example_uscc_has_a_valid_check_character() -> None:
    usccs = re.findall(r"--applicant (\S{18})", auth_cli.__doc__ or "")
    assert usccs
    for uscc in usccs:
        assert uscc_check_char(uscc[:17]) == uscc[-1], uscc


def test_the_audit_help_lists_the_columns_it_understands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        audit_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    for name in AUDIT_FIELDS:
        assert re.search(rf"^\s+{name}\s", text, re.M), name
    assert "统一社会信用代码" in text and "专利号" in text
