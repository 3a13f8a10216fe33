from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def art19_body() -> dict[str, Any]:
    example = ROOT / "rules/ipa2022/examples/ipa2022-art19.yaml"
    body: dict[str, Any] = yaml.safe_load(example.read_text("utf-8"))["value"]
    return body
