"""Each program's Swagger example: ``rules/<policy>/examples/<program id>.yaml``.

An example is ``summary`` (what it shows) and ``value`` (the request, as a portal sends it), and
optionally ``failing``: a second ``summary`` and ``value``, an application the program refuses
(tests/test_api.py checks that it is ineligible, with its reasons). Each is validated against its
program's form at start-up, so an example that Swagger UI offers always runs. Unquoted YAML dates and timestamps are sent as the text they were written as.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from service.rules.errors import RuleFileError
from service.rules.yaml_lines import LineDict, line_of, load_yaml

if TYPE_CHECKING:
    from service.rules.program import Program

EXAMPLES_DIR = "examples"


@dataclass(frozen=True)
class Example:
    summary: str
    value: dict[str, Any]
    file: str
    failing: Example | None = None

    def openapi(self) -> dict[str, Any]:
        return {"summary": self.summary, "value": self.value}


def _plain(value: Any) -> Any:
    """JSON as a portal writes it: text for dates and timestamps, plain dicts and lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def load_examples(root: Path, programs: dict[str, Program]) -> dict[str, Example]:
    out: dict[str, Example] = {}
    for path in sorted(root.rglob(f"{EXAMPLES_DIR}/*.yaml")):
        label = f"rules/{path.relative_to(root).as_posix()}"
        try:
            raw = load_yaml(path.read_text(encoding="utf-8"))
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            raise RuleFileError(label, (mark.line + 1) if mark else 1, str(exc.problem)) from exc
        program = programs.get(path.stem)
        if program is None:
            raise RuleFileError(
                label, 1, f"an example is named after its program: no '{path.stem}'"
            )
        if not isinstance(raw, LineDict) or not {"summary", "value"} <= set(raw) <= {
            "summary",
            "value",
            "failing",
        }:
            raise RuleFileError(
                label,
                1,
                "an example has a summary (text) and a value (the request), and may "
                "have a failing one (summary and value)",
            )
        value = _checked(label, raw, (), program)
        failing = None
        if "failing" in raw:
            if not isinstance(raw["failing"], LineDict) or set(raw["failing"]) != {
                "summary",
                "value",
            }:
                raise RuleFileError(
                    label, line_of(raw, ("failing",)), "failing: has a summary and a value"
                )
            failing = Example(
                raw["failing"]["summary"], _checked(label, raw, ("failing",), program), label
            )
        out[program.id] = Example(raw["summary"], value, label, failing)
    return out


def _checked(label: str, raw: LineDict, where: tuple[str, ...], program: Program) -> dict[str, Any]:
    node = raw
    for key in where:
        node = node[key]
    if not isinstance(node["summary"], str) or not isinstance(node["value"], dict):
        raise RuleFileError(
            label, line_of(raw, where or ("summary",)), "summary is text and value a mapping"
        )
    value = _plain(node["value"])
    try:
        program.form.model_validate(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = error["loc"]
        raise RuleFileError(
            label,
            line_of(raw, (*where, "value", *loc)),
            f"the example is not a valid {program.form_name} form: "
            f"{'.'.join(str(p) for p in loc)}: {error['msg']}",
        ) from exc
    return value
