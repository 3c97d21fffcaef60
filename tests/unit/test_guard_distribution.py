"""The guard installs alone: its own distribution, depending on PyJWT only."""

from __future__ import annotations

import tomllib
from pathlib import Path

GUARD = Path(__file__).resolve().parents[2] / "origin_guard"


def test_the_guard_distribution_depends_on_pyjwt_only() -> None:
    project = tomllib.loads((GUARD / "pyproject.toml").read_text())
    assert project["project"]["dependencies"] == ["pyjwt[crypto]>=2.8"]
    assert project["tool"]["setuptools"]["packages"] == ["origin_guard"]
    assert project["tool"]["setuptools"]["package-dir"] == {"origin_guard": "."}


def test_the_guard_source_imports_nothing_of_the_waiting_room_or_its_stack() -> None:
    forbidden = ("waitingroom", "fastapi", "starlette", "boto3", "botocore", "pydantic")
    for path in GUARD.glob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")):
                module = stripped.split()[1].split(".")[0]
                assert module not in forbidden, f"{path.name}: {stripped}"
