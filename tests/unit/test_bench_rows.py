"""`make bench` rows: the target a row prints is the comparison it makes."""

from __future__ import annotations

import pytest

from bench import __main__ as bench


@pytest.mark.parametrize(
    ("value", "op", "limit", "unit", "target", "verdict"),
    [
        (1.015, "<=", 1.05, "", "<= 1.05", "PASS"),
        (1.06, "<=", 1.05, "", "<= 1.05", "FAIL"),
        (1.2, "<=", 1.3, "x", "<= 1.3x", "PASS"),
        (20_000, "<=", 1_000, "", "<= 1,000", "FAIL"),
        (250_000, "<", 250_000, "", "< 250,000", "FAIL"),
        (1.0, "=", 1, "", "= 1", "PASS"),
    ],
)
def test_a_judged_row_prints_the_limit_it_checks(
    capsys: pytest.CaptureFixture[str],
    value: float,
    op: str,
    limit: float,
    unit: str,
    target: str,
    verdict: str,
) -> None:
    bench.check("pickup: reads per visitor", f"{value}", value, op, limit, unit)
    line = capsys.readouterr().out
    assert line.split()[-2:] == [*target.split()[1:], verdict]
    assert f" {target} " in line
    assert bench.ROWS.pop() == ("pickup: reads per visitor", f"{value}", target, verdict == "PASS")
