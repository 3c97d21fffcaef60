"""The CLI's command line: global options anywhere, the default URL from the environment."""

from __future__ import annotations

import pytest

from waitingroom.cli import build_parser, default_url


@pytest.mark.parametrize(
    "argv",
    [
        ["--url", "http://wait.example", "--admin-key", "k", "--json", "rooms", "stats", "demo"],
        ["rooms", "stats", "demo", "--url", "http://wait.example", "--admin-key", "k", "--json"],
        ["--json", "rooms", "--url", "http://wait.example", "stats", "demo", "--admin-key", "k"],
    ],
)
def test_global_options_work_before_or_after_the_command(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert (args.url, args.admin_key, args.json) == ("http://wait.example", "k", True)
    assert (args.command, args.action, args.room) == ("rooms", "stats", "demo")


def test_an_option_after_the_command_wins_and_those_left_out_keep_their_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WAITINGROOM_URL", raising=False)
    monkeypatch.delenv("PORT", raising=False)
    args = build_parser().parse_args(["--url", "http://a", "drain", "demo", "--url", "http://b"])
    assert args.url == "http://b"
    args = build_parser().parse_args(["drain", "demo", "--sigv4", "--region", "eu-west-1"])
    assert (args.url, args.admin_key, args.json) == ("http://127.0.0.1:8080", None, False)
    assert (args.sigv4, args.region) == (True, "eu-west-1")


def test_the_default_url_comes_from_waitingroom_url_then_port() -> None:
    assert default_url({"WAITINGROOM_URL": "https://wait.example", "PORT": "9000"}) == (
        "https://wait.example"
    )
    assert default_url({"PORT": "9000"}) == "http://127.0.0.1:9000"
    assert default_url({}) == "http://127.0.0.1:8080"


def test_help_names_the_variables_and_the_url_in_force(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("WAITINGROOM_URL", raising=False)
    monkeypatch.setenv("PORT", "9123")
    for argv in (["--help"], ["rooms", "--help"], ["drain", "--help"]):
        with pytest.raises(SystemExit) as done:
            build_parser().parse_args(argv)
        assert done.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "$WAITINGROOM_URL" in text and "$PORT" in text
        assert "http://127.0.0.1:9123" in text
        assert "$WAITINGROOM_ADMIN_KEY" in text
