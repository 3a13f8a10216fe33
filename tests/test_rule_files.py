"""A malformed rule file stops start-up with a message naming the file and the line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from service.config import Settings
from service.main import create_app
from service.rules.loader import RuleFileError, load_rules, rules_version
from tests.conftest import RULES


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules" / "ipa2022"
    target.mkdir(parents=True)
    shutil.copy(RULES / "_forms.yaml", target.parent)
    shutil.copy(RULES / "ipa2022" / "_forms.yaml", target)
    shutil.copy(RULES / "ipa2022" / "_general.yaml", target)
    shutil.copy(RULES / "ipa2022" / "art19.yaml", target)
    return tmp_path / "rules"


def _break(rules: Path, old: str, new: str) -> Path:
    path = rules / "ipa2022" / "art19.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def _line_of(path: Path, needle: str) -> int:
    return next(
        i
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if needle in line
    )


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        (
            '"university", "research_institute"',
            '"universty", "research_institute"',
            "universty",
            "'universty' is not one of",
        ),
        (
            "item.cnipa_recorded",
            "item.cnipa_recordd",
            "cnipa_recordd",
            "unknown field 'item.cnipa_recordd'",
        ),
        (
            "item.contract_date in contract_window",
            "item.contract_date in pool",
            "in pool",
            "'in' takes a list or a window",
        ),
        (
            "item.contract_date in contract_window",
            "item.contract_date >= 2022",
            ">= 2022",
            "is not a date",
        ),
        ("item.cnipa_recorded", "item.cnipa_recorded and (", "and (", "cannot parse condition"),
        ('value: "1500.00"', "value: 1500.5", "1500.5", "write amounts as quoted strings"),
        ("form: ipa2022-transactions", "form: ipa2022-transaction", "form:", "unknown form"),
        (
            "    article: 第十九条\n    zh: 按照每件专利",
            "    artcle: 第十九条\n    zh: 按照每件专利",
            "artcle",
            "Extra inputs are not permitted",
        ),
        (
            "  amount: per_patent_amount",
            "  amount: per_patent_amout",
            "award:",
            "no parameter 'per_patent_amout'",
        ),
        ("include: [_general.yaml]", "include: [_missing.yaml]", "include:", "not found"),
        (
            "  - list: transactions",
            "  - list: transaction",
            "- list:",
            "no item list 'transaction'",
        ),
        (
            "kind: performance_reward",
            "kind: performance_reward\nkind: support",
            "kind: support",
            "duplicate key",
        ),
        ("title_zh: 高校", "title_zh: [高校", "title_en", ""),
    ],
)
def test_broken_rule_file_names_file_and_line(
    rules: Path, old: str, new: str, needle: str, message: str
) -> None:
    path = _break(rules, old, new)
    with pytest.raises(RuleFileError) as caught:
        load_rules(rules)
    err = caught.value
    assert err.path == "rules/ipa2022/art19.yaml"
    assert message in err.message
    if needle:
        assert err.line == _line_of(path, needle), str(err)
    assert str(err).startswith(f"rules/ipa2022/art19.yaml:{err.line}: ")


def test_broken_rule_file_stops_app_start_up(rules: Path) -> None:
    _break(rules, "item.cnipa_recorded", "item.cnipa_recordd")
    with pytest.raises(RuleFileError, match=r"rules/ipa2022/art19.yaml:\d+"):
        create_app(Settings(rules_dir=rules))


def test_rules_version_is_a_hash_of_the_content(rules: Path) -> None:
    before = rules_version(rules)
    assert before == load_rules(rules).version
    _break(rules, "本项目奖补总额不超过300万元", "本项目奖补总额不超过300万元。")
    assert rules_version(rules) != before


def test_the_shipped_rules_load(book) -> None:  # type: ignore[no-untyped-def]
    assert {"ipa2022-art19", "ipa2022-art20", "ipa2022-art21", "ipa2022-art22"} <= set(
        book.programs
    )
    for program in book.programs.values():
        for condition in program.conditions:
            assert (
                condition.article.startswith(("第", "表", "政策", "四（一）"))
                and condition.zh
                and condition.en
            )
