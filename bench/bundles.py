"""`python -m bench h`: cold import of each Lambda bundle as `sam build` makes it.

Each bundle is built by infra/Makefile's own target (locked wheels, precompiled), for this
machine's platform instead of arm64 so that it can be imported here, next to a bare
FastAPI + Mangum bundle built the same way (the same pinned versions, the same compile step).
boto3, which the Lambda runtime provides, is built the same way into a directory every import
sees. Each import runs in a fresh interpreter that sees only the bundle, that directory and the
standard library (`-S`), median of 7. The same bundle without its .pyc files, in a directory
Python may not write to (as Lambda's), shows what precompiling saves.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAKEFILE = ROOT / "infra" / "Makefile"
LOCKS = ROOT / "infra" / "requirements"
BUNDLES = {
    "ApiFunction": "waitingroom.handler",
    "DrainerFunction": "waitingroom.drainer",
    "GuardFunction": "origin_guard.authorizer",
}
RUNS = 7
COMPILE_MODE = ("--invalidation-mode", "unchecked-hash")  # as infra/Makefile
TARGET = 1.3

Say = Callable[[str], None]
Row = Callable[..., None]


def _platform() -> str:
    machine = {"arm64": "aarch64", "amd64": "x86_64"}.get(platform.machine().lower())
    arch = machine or platform.machine().lower()
    return f"--platform manylinux2014_{arch} --platform manylinux_2_28_{arch}"


def _make(target: str, out: Path) -> None:
    subprocess.run(  # noqa: S603 - fixed argv
        [
            shutil.which("make") or "make",
            "--no-print-directory",
            "-s",
            "-f",
            str(MAKEFILE),
            target,
            f"ARTIFACTS_DIR={out}",
            f"PIP_PLATFORM={_platform()}",
            f"PYTHON={sys.executable}",
        ],
        check=True,
        capture_output=True,
        text=True,
    )


def _pins(lock: Path) -> dict[str, str]:
    """name -> version of a lock file (uv pip compile output)."""
    return {
        m[1].lower(): m[2]
        for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^\s\\;]+)", lock.read_text(), re.M)
    }


def _pip_install(out: Path, requirements: list[str], constraints: dict[str, str]) -> None:
    """What infra/Makefile's requirements + compile steps do, for packages not in a lock."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(f"{n}=={v}" for n, v in constraints.items()) + "\n")
    try:
        subprocess.run(  # noqa: S603 - fixed argv
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-compile",
                "--target",
                str(out),
                *_platform().split(),
                "--implementation",
                "cp",
                "--python-version",
                f"{sys.version_info[0]}.{sys.version_info[1]}",
                "--only-binary=:all:",
                "-c",
                f.name,
                *requirements,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    finally:
        os.unlink(f.name)
    subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-m", "compileall", "-q", "-j", "0", *COMPILE_MODE, str(out)],
        check=True,
        capture_output=True,
    )


def _without_pyc(bundle: Path, out: Path) -> Path:
    shutil.copytree(bundle, out, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return out


def cold_import_ms(paths: list[Path], modules: str, *, writable: bool = True) -> float:
    """Median CPU time of `import modules` in a fresh interpreter seeing only `paths` (CPU, not
    wall time: on a shared machine the wall clock measures the neighbours)."""
    code = (
        "import sys, time; sys.path[:0] = sys.argv[1].split(':'); t = time.process_time(); "
        f"import {modules}; print(time.process_time() - t)"
    )
    env = {"PATH": os.environ.get("PATH", "")}
    if not writable:
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # Lambda's code directory is read-only
    times = []
    for _ in range(RUNS):
        out = subprocess.run(  # noqa: S603 - fixed argv
            [sys.executable, "-S", "-c", code, ":".join(map(str, paths))],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout
        times.append(float(out.split()[-1]))
    return statistics.median(times) * 1000


def section(say: Say, row: Row) -> None:
    say(
        f"\nh. Lambda bundles as built (locked, precompiled; {platform.machine()} here): cold "
        f"import CPU time, fresh interpreter, median of {RUNS}"
    )
    pins = _pins(LOCKS / "api.lock")
    with tempfile.TemporaryDirectory(prefix="wr-bundles-") as tmp:
        work = Path(tmp)
        runtime = work / "runtime"  # what the Lambda runtime provides
        _pip_install(runtime, ["boto3"], {})
        bare = work / "bare"
        _pip_install(bare, ["fastapi", "mangum"], pins)
        base = cold_import_ms([bare, runtime], "fastapi, mangum, boto3")
        row("bare fastapi + mangum bundle (+ runtime boto3)", f"{base:.0f} ms")
        for logical_id, module in BUNDLES.items():
            bundle = work / logical_id
            _make(f"build-{logical_id}", bundle)
            ms = cold_import_ms([bundle, runtime], module)
            row(
                f"{logical_id} bundle: import {module} / bare",
                f"{ms / base:.2f}x ({ms:.0f} ms)",
                f"<= {TARGET}x",
                ms / base <= TARGET,
            )
            plain = _without_pyc(bundle, work / f"{logical_id}-nopyc")
            before = cold_import_ms([plain, runtime], module, writable=False)
            row("  same without .pyc (compiled at every cold start)", f"{before:.0f} ms")
