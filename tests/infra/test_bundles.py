"""What each Lambda bundle copies from the repository: its runtime packages, no dev tooling.

Runs `make -f infra/Makefile copy-<LogicalId>` (the packages alone: nothing is downloaded) into a
scratch directory and looks at the files, then imports each handler from that copy.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.checks import (
    API_HANDLER,
    DRAINER_HANDLER,
    GUARD_HANDLER,
    MAKEFILE,
    ROOT,
    copy_bundle,
    function_by_handler,
    load_template,
    makefile_bundles,
)

SAM = load_template()
BUNDLES = makefile_bundles(MAKEFILE.read_text())
WAITINGROOM_BUNDLES = [
    function_by_handler(SAM, h).logical_id for h in (API_HANDLER, DRAINER_HANDLER)
]
GUARD_BUNDLE = function_by_handler(SAM, GUARD_HANDLER).logical_id
DEV_TOOLING = ("devstack", "demo_origin", "dynamodb_local", "local", "cli")


def copied(logical_id: str, tmp_path: Path) -> Path:
    out = tmp_path / logical_id
    done = copy_bundle(logical_id, out)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def files(directory: Path) -> set[str]:
    return {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}


def package_files(package: str) -> set[str]:
    return {
        f"{package}/{name}"
        for name in files(ROOT / package)
        if "__pycache__" not in name and not name.endswith(".pyc")
    }


@pytest.mark.parametrize("logical_id", WAITINGROOM_BUNDLES)
def test_the_api_and_drainer_bundles_hold_waitingroom_without_the_cli_or_the_client(
    logical_id: str, tmp_path: Path
) -> None:
    bundle = copied(logical_id, tmp_path)
    found = files(bundle)
    # the API checks admission tokens at complete with origin_guard's TokenVerifier
    guard = (
        {"origin_guard"}
        if logical_id == function_by_handler(SAM, API_HANDLER).logical_id
        else set()
    )
    assert {p.name for p in bundle.iterdir()} == {"waitingroom", *guard}
    found -= {f for package in guard for f in package_files(package)}
    for module in ("__init__.py", "handler.py", "drainer.py", "domain.py", "store/__init__.py"):
        assert f"waitingroom/{module}" in found
    assert (bundle / "waitingroom" / "api.py").is_file() or (
        bundle / "waitingroom" / "api" / "__init__.py"
    ).is_file()
    assert found == package_files("waitingroom") - {"waitingroom/cli.py", "waitingroom/client.py"}
    assert not [f for f in found if Path(f).stem in DEV_TOOLING or "__pycache__" in f]


def test_the_authorizer_bundle_holds_only_origin_guard(tmp_path: Path) -> None:
    bundle = copied(GUARD_BUNDLE, tmp_path)
    assert {p.name for p in bundle.iterdir()} == {"origin_guard"}
    assert files(bundle) == package_files("origin_guard")
    assert "origin_guard/authorizer.py" in files(bundle)


@pytest.mark.parametrize("handler", [API_HANDLER, DRAINER_HANDLER, GUARD_HANDLER])
def test_each_handler_imports_from_its_copied_bundle(handler: str, tmp_path: Path) -> None:
    """The copy is enough on its own (with its requirements): no import of the CLI, devtools,
    tests or the other bundle's package."""
    logical_id = function_by_handler(SAM, handler).logical_id
    bundle = copied(logical_id, tmp_path)
    module, _, attribute = handler.rpartition(".")
    code = (
        "import importlib, sys\n"
        f"m = importlib.import_module({module!r})\n"
        f"assert callable(getattr(m, {attribute!r}))\n"
        "print('\\n'.join(sorted(\n"
        "    getattr(v, '__file__', None) or '' for k, v in list(sys.modules.items())\n"
        f"    if k.partition('.')[0] in {('waitingroom', 'origin_guard')!r})))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=bundle,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = [Path(f) for f in done.stdout.split()]
    assert loaded, "no first-party module was loaded"
    assert all(f.is_relative_to(bundle) for f in loaded), loaded
    # the API handler builds its app on the first request, so origin_guard (used at complete)
    # may not be loaded yet: whatever is loaded comes from the bundle's own packages
    packages = {f.relative_to(bundle).parts[0] for f in loaded}
    assert packages <= set(BUNDLES[logical_id].packages), packages
    assert module.partition(".")[0] in packages


def test_a_built_bundle_is_precompiled_and_its_handler_imports_from_the_bytecode(
    tmp_path: Path,
) -> None:
    """`make build-GuardFunction` as `sam build` runs it (for this machine's platform): locked
    wheels, hash-checked, then compiled; the handler imports in an interpreter that sees only
    the bundle and may not write bytecode, and every module it loads comes from a .pyc."""
    from bench.bundles import _platform

    out = tmp_path / "guard"
    done = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-f",
            str(MAKEFILE),
            f"build-{GUARD_BUNDLE}",
            f"ARTIFACTS_DIR={out}",
            f"PIP_PLATFORM={_platform()}",
            f"PYTHON={sys.executable}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    sources = [p for p in out.rglob("*.py") if "__pycache__" not in p.parts]
    assert sources
    tag = sys.implementation.cache_tag
    missing = [
        p for p in sources if not (p.parent / "__pycache__" / f"{p.stem}.{tag}.pyc").is_file()
    ]
    assert missing == []
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import origin_guard.authorizer as a; "
        "mods = [m for m in list(sys.modules.values()) if (getattr(m, '__file__', '') or '')"
        ".startswith(sys.argv[1]) and m.__file__.endswith('.py')]; "
        "print(all(m.__spec__ is None or m.__spec__.cached and "
        "__import__('os').path.exists(m.__spec__.cached) for m in mods), len(mods))"
    )
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"}
    ran = subprocess.run(
        [sys.executable, "-S", "-c", probe, str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    all_cached, count = ran.stdout.split()
    assert all_cached == "True" and int(count) > 10
