"""Each program's Swagger example: ``rules/<policy>/examples/<program id>.yaml``.

An example is ``summary`` (what it shows) and ``value`` (the request, as a portal sends it). It
is validated against its program's form at start-up, so an example that Swagger UI offers
always runs. Unquoted YAML dates and timestamps are sent as the text they were written as.
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
        if (
            not isinstance(raw, LineDict)
            or set(raw) != {"summary", "value"}
            or not isinstance(raw["summary"], str)
            or not isinstance(raw["value"], dict)
        ):
            raise RuleFileError(
                label, 1, "an example has a summary (text) and a value (the request)"
            )
        value = _plain(raw["value"])
        try:
            program.form.model_validate(value)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"])
            raise RuleFileError(
                label,
                line_of(raw, ("value", *error["loc"])),
                f"the example is not a valid {program.form_name} form: {where}: {error['msg']}",
            ) from exc
        out[program.id] = Example(raw["summary"], value, label)
    return out
