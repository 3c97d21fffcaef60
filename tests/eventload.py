"""Load the real API Gateway / EventBridge payloads kept under tests/events/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).parent / "events"


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of tests/events/<name>.json (the .json suffix is optional)."""
    path = EVENTS / (name if name.endswith(".json") else f"{name}.json")
    data: dict[str, Any] = json.loads(path.read_text())
    return data
