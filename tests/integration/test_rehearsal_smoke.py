"""A small rehearsal, end to end: Locust visitors against a local stack, judged by the verdict.

The full rehearsal (`make rehearsal`, 2,200 visitors) is too long for every run; this one keeps
the whole path honest: the stack, the locustfile, the drainer's ticks as visitors see them and
every promise the verdict checks (no over-admission, no lost ticket, no 5xx)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def rehearse(out: Path, *options: str) -> str:
    """`python -m loadtests.rehearsal` with these options, writing to `out`; its report, once
    it is checked to have exited 0."""
    run = subprocess.run(
        [sys.executable, "-m", "loadtests.rehearsal", *options, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    return report


def test_a_small_burst_passes_the_verdict(tmp_path: Path) -> None:
    report = rehearse(
        tmp_path,
        *("--visitors", "200", "--burst-seconds", "2", "--tail", "20"),
        *("--tail-seconds", "5", "--max-active", "40", "--max-active-changes", "8:60"),
        *("--session-seconds", "10", "--pickup-seconds", "5", "--max-seconds", "60"),
        *("--history", "6", "--history-seconds", "3"),
    )
    assert "history: 6 of 6 visitors went straight in" in report, report
    assert "VERDICT: PASS" in report, report
    assert "ETA at first exact, +-25 %" in report, report
    assert (tmp_path / "verdict.txt").is_file() and (tmp_path / "chart.html").is_file()
    # the clock of admissions: every state the drainer committed, read in the store
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    states = [r for r in records if r["e"] == "tick" and r.get("source") == "store"]
    assert len(states) >= 10, report
    assert all(r["committed"] >= r["at"] for r in states)
    assert states[-1]["consumed"] >= 200  # the burst was admitted (the history too)


def test_distributed_a_master_and_two_workers_check_the_operators_changes(tmp_path: Path) -> None:
    """loadtests/README.md's distributed command: the admin key set on the master only still
    reaches the operator (on a worker), so the max_active change is made and judged (here with
    the visitors straight at the API, no edge)."""
    report = rehearse(
        tmp_path,
        *("--workers", "2", "--no-edge", "--history", "0"),
        *("--visitors", "60", "--burst-seconds", "2", "--tail", "10"),
        *("--tail-seconds", "4", "--max-active", "20", "--max-active-changes", "4:30"),
        *("--session-seconds", "10", "--pickup-seconds", "5", "--max-seconds", "60"),
    )
    assert "VERDICT: PASS" in report, report
    assert "settings over the run: 20, 30" in report, report  # the change was made
    assert "NOT CHECKED" not in report, report
