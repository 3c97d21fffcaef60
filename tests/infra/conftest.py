"""The template, translated once per session by the SAM translator in the tools virtualenv."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.infra.checks import TEMPLATE, missing_tools, translate


@pytest.fixture(scope="session")
def tools() -> None:
    if problem := missing_tools():
        pytest.fail(problem)


Translate = Callable[[Path], dict[str, Any]]


@pytest.fixture(scope="session")
def translate_file(tools: None) -> Translate:
    def run(path: Path) -> dict[str, Any]:
        done = translate(path)
        assert done.returncode == 0, f"translate.py failed:\n{done.stderr}"
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    return run


@pytest.fixture(scope="session")
def cfn(translate_file: Translate) -> dict[str, Any]:
    return translate_file(TEMPLATE)


@pytest.fixture(scope="session")
def cfn_path(cfn: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfn") / "translated.json"
    path.write_text(json.dumps(cfn))
    return path
