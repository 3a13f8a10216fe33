"""Reading the rule cases in tests/cases/*.yaml.

A case file names a program, a ``base`` application that passes every condition, and cases.
Each case changes the base with ``set`` (a path such as ``transactions[1].contract_date``;
an index one past the end appends) and ``remove``, or gives a whole ``body``, then states what
must come out. See tests/cases/README.md.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CASES_DIR = Path(__file__).parent / "cases"
_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@dataclass
class Case:
    file: str
    program: str
    name: str
    body: Any
    expect: dict[str, Any]


def _tokens(path: str) -> list[str | int]:
    return [int(idx) if idx else name for name, idx in _TOKEN.findall(path)]


def _assign(body: Any, path: str, value: Any, remove: bool = False) -> None:
    *parents, last = _tokens(path)
    node = body
    for token in parents:
        node = node[token]
    if remove:
        del node[last]
    elif isinstance(last, int) and isinstance(node, list) and last == len(node):
        node.append(value)
    else:
        node[last] = value


def build_body(base: Any, case: dict[str, Any]) -> Any:
    body = copy.deepcopy(case.get("body", base))
    for path, value in (case.get("set") or {}).items():
        _assign(body, path, copy.deepcopy(value))
    for path in case.get("remove") or []:
        _assign(body, path, None, remove=True)
    return body


def load_cases(pattern: str = "*.yaml") -> list[Case]:
    out = []
    for path in sorted(CASES_DIR.glob(pattern)):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in data["cases"]:
            out.append(
                Case(
                    path.stem,
                    data["program"],
                    case["name"],
                    build_body(data.get("base"), case),
                    case["expect"],
                )
            )
    return out
