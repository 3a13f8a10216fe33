from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def art19_body() -> dict[str, Any]:
    body: dict[str, Any] = json.loads(
        (ROOT / "service/api/examples/ipa2022-art19.json").read_text("utf-8")
    )["value"]
    return body
