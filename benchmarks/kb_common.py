"""What the benchmark scripts share: where the data is, where results go."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The benchmark data: ``LOTTERY_DATA``, else ``<repo>/../shared/datasets``."""
    path = Path(os.environ.get("LOTTERY_DATA") or REPO.parent / "shared" / "datasets")
    if not path.is_dir():
        raise SystemExit(f"benchmark data not found at {path}: set LOTTERY_DATA")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write ``results/<name>.json`` and return its path."""
    out = REPO / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out
