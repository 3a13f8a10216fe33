"""Write the committed openapi.yaml from the app: ``python -m service.export_openapi``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from service.config import PROJECT_ROOT


def openapi_document() -> dict[str, Any]:
    from service.main import create_app

    # Through JSON, so the YAML holds exactly what /openapi.json serves.
    result: dict[str, Any] = json.loads(json.dumps(create_app().openapi()))
    return result


def render() -> str:
    return yaml.safe_dump(openapi_document(), allow_unicode=True, sort_keys=False, width=100)


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else PROJECT_ROOT / "openapi.yaml"
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
