"""Forms and examples as data (rules/**/_forms.yaml, rules/<policy>/examples): a malformed form
file stops start-up naming the file and the line; the audit reads the same labels; no
program's field name or district is left in the service's Python; and a program added as data
(a new form field, touching no Python) answers, refuses a bad value and shows in OpenAPI."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from service.audit.columns import recognise
from service.config import Settings
from service.main import create_app
from service.rules.expr import Compiler
from service.rules.loader import RuleBook, RuleFileError, load_rules
from tests.conftest import RULES
from tests.dbsupport import sqlite_url
from tests.examples import examples

SERVICE = Path(__file__).resolve().parent.parent / "service"


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules" / "ipa2022"
    (target / "examples").mkdir(parents=True)
    shutil.copy(RULES / "_forms.yaml", target.parent)
    for name in ("_forms.yaml", "_general.yaml", "art19.yaml", "examples/ipa2022-art19.yaml"):
        shutil.copy(RULES / "ipa2022" / name, target / name)
    return tmp_path / "rules"


def _break(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _line_of(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        ("{type: patent_number, zh: 专利号, en: patent number, article: 第十九条}",
         "{type: patent_numbr, zh: 专利号, en: patent number, article: 第十九条}",
         "patent_numbr", "unknown type 'patent_numbr'"),
        ("{type: int, min: 0, max: 1000000,", "{type: int, min: 10, max: 1,", "min: 10",
         "min 10 is above max 1"),
        ("{type: text, max_length: 500,", "{type: text, max_length: 0,", "max_length: 0",
         "greater than or equal to 1"),
        ("{type: bool, zh: 备案入册,", "{type: bool, max: 3, zh: 备案入册,", "max: 3",
         "'max' does not apply to a bool field"),
        ("{type: bool, zh: 备案入册,", "{type: bool, default: 3, zh: 备案入册,", "default: 3",
         "bad default"),
        ("      cnipa_recorded:", "      contract_date: {type: date, zh: 又一个, en: again}\n"
         "      cnipa_recorded:", "又一个", "duplicate key 'contract_date'"),
        ("license: {zh: 许可, en: licence}", "license: {zh: 许可}", "license: {zh: 许可}",
         "Field required"),
        ("license: {zh: 许可, en: licence}", "license: {}", "license: {}", "Field required"),
        ("    fields:\n      transactions:\n",
         "    fields:\n      submitted_at: {type: date, zh: 日期, en: date}\n      transactions:\n",
         "submitted_at: {type: date", "already in 'Application'"),
        ("items: Loan, max_items: 5000,", "items: Loan,", "loans: {type: list",
         "a list needs max_items"),
        ("enum: shanghai_districts,", "enum: shanghai_district,", "enum: shanghai_district,",
         "no shared enum 'shanghai_district'"),
        ("      counterparty: {type: Party,", "      counterparty: {type: Transaction,",
         "counterparty: {type: Transaction", "would contain itself"),
    ],
)  # fmt: skip
def test_a_malformed_form_file_names_file_and_line(
    rules: Path, old: str, new: str, needle: str, message: str
) -> None:
    path = rules / "ipa2022" / "_forms.yaml"
    _break(path, old, new)
    with pytest.raises(RuleFileError) as caught:
        load_rules(rules)
    err = caught.value
    assert err.path == "rules/ipa2022/_forms.yaml", str(err)
    assert message in err.message, str(err)
    assert err.line == _line_of(path, needle), str(err)


def test_a_malformed_form_file_stops_app_start_up(rules: Path) -> None:
    _break(rules / "_forms.yaml", "uscc: {type: uscc,", "uscc: {type: usc,")
    with pytest.raises(RuleFileError, match=r"^rules/_forms.yaml:\d+: Applicant.uscc: unknown"):
        create_app(Settings(rules_dir=rules))


def test_a_bad_example_names_file_and_line(rules: Path) -> None:
    path = rules / "ipa2022" / "examples" / "ipa2022-art19.yaml"
    _break(path, "contract_date: '2022-09-01'", "contract_date: '2022-13-01'")
    with pytest.raises(RuleFileError) as caught:
        load_rules(rules)
    assert caught.value.path == "rules/ipa2022/examples/ipa2022-art19.yaml"
    assert "transactions.0.contract_date" in caught.value.message
    assert caught.value.line == _line_of(path, "2022-13-01")


def test_an_example_is_named_after_its_program(rules: Path) -> None:
    examples_dir = rules / "ipa2022" / "examples"
    (examples_dir / "ipa2022-art19.yaml").rename(examples_dir / "ipa2022-art91.yaml")
    with pytest.raises(RuleFileError, match="no 'ipa2022-art91'"):
        load_rules(rules)


def test_every_program_has_its_example(book: RuleBook) -> None:
    assert set(examples()) == set(book.programs)


def test_the_districts_are_written_once(book: RuleBook) -> None:
    """第十二条（二）'s condition names the list of rules/_forms.yaml; it compiles to the list
    written out, so every engine reads it as before."""
    program = book.programs["ipa2022-art12-2"]
    districts = tuple(book.forms.enums["shanghai_districts"].values)
    assert len(districts) == 16
    written_out = "district in [" + ", ".join(f'"{d}"' for d in districts) + "]"
    compiler = Compiler(program.scope, program.parameters)
    (given,) = [c for c in program.conditions if c.id == "district-given"]
    assert given.text == "district in shanghai_districts"
    assert given.node == compiler.compile(written_out)


def test_a_district_is_accepted_by_its_chinese_name(book: RuleBook) -> None:
    form = book.forms.forms["ipa2022-support"]
    body = examples()["ipa2022-art12-2"]["value"]
    for name in ("浦东新区", "浦东", " pudong "):
        assert form.model_validate({**body, "district": name}).district == "pudong"  # type: ignore[attr-defined]


# The fact headers the audit read before the forms became data (service/audit/columns.py).
OLD_HEADERS = {
    "单位类型": "applicant.entity_type", "entity_type": "applicant.entity_type",
    "注册在本市": "applicant.registered_in_shanghai",
    "registered_in_shanghai": "applicant.registered_in_shanghai",
    "经营状态": "applicant.operating_status", "operating_status": "applicant.operating_status",
    "信用状况": "applicant.credit_status", "credit_status": "applicant.credit_status",
    "是否中小企业": "applicant.is_sme", "申报时间": "submitted_at", "提交时间": "submitted_at",
    "申请金额": "requested_amount", "自筹经费": "self_funds", "执行期": "duration_years",
    "所在区": "district", "绩效等次": "performance_tier", "备案入册": "custody_registered",
    "专利号": "patent_number", "许可转让方式": "kind", "合同日期": "contract_date",
    "备案登记": "cnipa_recorded", "受让方名称": "counterparty.name",
    "受让方信用代码": "counterparty.uscc", "受让方注册在本市": "counterparty.registered_in_shanghai",
    "受让方中小企业": "counterparty.is_sme", "贷款编号": "loan_id", "放款金额": "disbursed_amount",
    "放款日期": "disbursed_on", "质押登记": "pledge_registered", "质押物": "collateral",
    "借款人名称": "borrower.name", "借款人信用代码": "borrower.uscc",
    "借款人注册在本市": "borrower.registered_in_shanghai", "借款人中小企业": "borrower.is_sme",
    "合同编号": "contract_id", "成交日期": "concluded_on", "开放许可": "open_license",
    "被许可人名称": "licensee.name", "被许可人信用代码": "licensee.uscc",
    "被许可人注册在本市": "licensee.registered_in_shanghai", "被许可人中小企业": "licensee.is_sme",
    "预算类别": "category", "预算金额": "amount",
}  # fmt: skip


def test_the_audit_reads_columns_by_the_field_labels(book: RuleBook) -> None:
    for header, path in OLD_HEADERS.items():
        column = recognise(header, book)
        assert column is not None and column.name == path, header
    assert recognise("统一社会信用代码", book).name == "applicant_uscc"  # type: ignore[union-attr]
    wan = recognise("放款金额（万元）", book)
    assert wan is not None and wan.name == "disbursed_amount" and wan.wan
    labels = recognise("所在区", book).choice_labels  # type: ignore[union-attr]
    assert labels["黄浦区"] == labels["黄浦"] == "huangpu"


def _family_fields(book: RuleBook) -> dict[str, set[str]]:
    """field name -> the form families declaring it (nested and item fields included)."""
    out: dict[str, set[str]] = {}

    def walk(model: Any, form_id: str) -> None:
        for name, info in model.model_fields.items():
            out.setdefault(name, set()).add(form_id)
            for arg in [info.annotation, *getattr(info.annotation, "__args__", ())]:
                if isinstance(arg, type) and hasattr(arg, "model_fields"):
                    walk(arg, form_id)

    for form_id, model in book.forms.forms.items():
        walk(model, form_id)
    return out


def _string_literals(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


# Words that are a field name of one family and also the service's own vocabulary.
WORDS = {
    "description",  # OpenAPI's and pydantic's keyword
    "role",  # an API key's role
    "kind",  # a program's, a finding's, a quota's kind
    "amount",  # an award's amount
}
GENERIC = {
    "district": {
        "audit/evaluate.py",  # the unit's area for a per-district quota (AREA)
        "audit/checks.py",  # the same unit column
        "db/rounds.py",  # a per-district quota breach's `district` in the allocation response
        "quotas.py",  # the unit column a per-district quota groups by
    },
}


def test_no_program_field_or_district_is_written_in_python(book: RuleBook) -> None:
    fields = _family_fields(book)
    own = {name for name, families in fields.items() if len(families) == 1} - WORDS
    districts = book.forms.enums["shanghai_districts"]
    own |= {str(v) for v in districts.values}
    own |= {t for v in districts.values.values() for t in (v.zh, *v.aliases)}
    assert {"transactions", "performance_tier", "district", "huangpu", "浦东新区"} <= own
    found = []
    for path in sorted(SERVICE.rglob("*.py")):
        where = path.relative_to(SERVICE).as_posix()
        for literal in _string_literals(path) & own:
            if where not in GENERIC.get(literal, set()):
                found.append(f"service/{where}: {literal!r}")
    assert not found, "declare these in rules/**/_forms.yaml, not in Python"


# -- a program added as data: a new policy folder, a new form and a field no program has -------
PILOT_FORMS = """\
forms:
  pilot2026-vouchers: VoucherApplication
models:
  VoucherApplication:
    extends: Application
    zh: 知识产权服务券试点
    en: IP service voucher pilot.
    fields:
      vouchers_redeemed:
        {type: int, min: 1, max: 50, zh: 已兑付服务券张数, en: vouchers redeemed, article: 第一条}
      service_line:
        type: enum
        zh: 服务类别
        en: service line
        article: 第一条
        values:
          patent_search: {zh: 专利检索, en: patent search}
          valuation: {zh: 价值评估, en: valuation}
"""
PILOT_PROGRAM = """\
id: pilot2026-vouchers
policy: pilot2026
kind: support
title_zh: 知识产权服务券试点
title_en: IP service voucher pilot
article: 第一条
source: pilot-2026.txt
form: pilot2026-vouchers
effective_from: 2026-01-01
effective_to: 2026-12-31
parameters:
  grant:
    type: money
    value: "20000.00"
    article: 第一条
    zh: 兑付3张以上评估类服务券的，一次性支持2万元
    en: 20,000 yuan once for three or more valuation vouchers redeemed
conditions:
  - id: enough-vouchers
    article: 第一条
    when: vouchers_redeemed >= 3 and service_line == "valuation"
    zh: 应已兑付3张以上价值评估服务券
    en: At least three valuation vouchers must have been redeemed
award: {kind: fixed, amount: grant, caps: []}
"""


def test_a_program_added_as_data(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    pilot = rules / "pilot2026"
    (pilot / "examples").mkdir(parents=True)
    (pilot / "_forms.yaml").write_text(PILOT_FORMS, encoding="utf-8")
    (pilot / "vouchers.yaml").write_text(PILOT_PROGRAM, encoding="utf-8")
    body = {**examples()["ipa2022-art21"]["value"], "vouchers_redeemed": 4}
    body = {
        k: v for k, v in body.items() if k in ("applicant", "submitted_at", "vouchers_redeemed")
    }
    body["service_line"] = "valuation"
    example = {"summary": "pilot2026-vouchers 兑付4张评估券", "value": body}
    (pilot / "examples" / "pilot2026-vouchers.yaml").write_text(
        yaml.safe_dump(example, allow_unicode=True), encoding="utf-8"
    )
    settings = Settings(rules_dir=rules, database_url=sqlite_url(tmp_path), auto_migrate=True)
    with TestClient(create_app(settings)) as client:
        url = "/v1/programs/pilot2026-vouchers/calculate"
        answer = client.post(url, json=body).json()
        assert answer["eligible"] is True and answer["award"]["amount"] == "20000.00"
        short = client.post(url, json={**body, "vouchers_redeemed": 2}).json()
        assert short["eligible"] is False
        assert [r["rule"] for r in short["reasons"] if not r["passed"]] == ["enough-vouchers"]
        bad = client.post(url, json={**body, "vouchers_redeemed": 51})
        assert bad.status_code == 422
        assert [d["path"] for d in bad.json()["detail"]] == ["vouchers_redeemed"]
        wrong = client.post(url, json={**body, "service_line": "valuaton"})
        assert [d["path"] for d in wrong.json()["detail"]] == ["service_line"]
        schema = client.get("/openapi.json").json()
    component = schema["components"]["schemas"]["VoucherApplication"]
    assert component["properties"]["vouchers_redeemed"]["maximum"] == 50
    assert component["properties"]["service_line"]["enum"] == ["patent_search", "valuation"]
    assert "vouchers_redeemed" in component["required"]
    check = schema["paths"]["/v1/programs/{program_id}/check"]["post"]["requestBody"]
    content = check["content"]["application/json"]
    assert {"$ref": "#/components/schemas/VoucherApplication"} in content["schema"]["oneOf"]
    assert content["examples"]["pilot2026-vouchers"]["value"] == body
