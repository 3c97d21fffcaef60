"""The waiting page as HTML: self-contained, escaped, accessible (the browser test runs it)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib import resources

import pytest

from waitingroom.page import render_waiting_page


def _static(name: str) -> str:
    return (resources.files("waitingroom") / "static" / name).read_text(encoding="utf-8")


def _script() -> str:
    """The page's script: the DOM side and the logic it imports."""
    return _static("waiting.js") + _static("waiting-logic.mjs") + _static("waiting-i18n.mjs")


def _everything(room: str = "demo") -> str:
    """The page as the browser gets it: the HTML and the files it loads."""
    return render_waiting_page(room) + _static("waiting.css") + _script()


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._in_script = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script -= 1

    def handle_data(self, data: str) -> None:
        if not self._in_script:
            self.text.append(data)

    def with_attr(self, name: str) -> list[tuple[str, dict[str, str | None]]]:
        return [(t, a) for t, a in self.tags if name in a]


def _parse(room: str) -> _Collect:
    parser = _Collect()
    parser.feed(render_waiting_page(room))
    parser.close()
    return parser


def test_the_page_loads_nothing_from_elsewhere() -> None:
    page = _everything()
    parsed = _parse("demo")
    for tag, attrs in parsed.tags:
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            value = attrs.get(name)
            if value is not None and value != "data:,":  # the empty icon: no request at all
                assert "//" not in value and ":" not in value, f"<{tag} {name}={value!r}>"
    links = [a for t, a in parsed.tags if t == "link"]
    assert links[0] == {"rel": "icon", "href": "data:,"}, "no icon file"
    # its own stylesheet and script module, relative to the page: no fonts, nothing else
    assert [a["rel"] for a in links[1:]] == ["stylesheet", "modulepreload", "modulepreload"]
    assert all((a["href"] or "").startswith("_assets/") for a in links[1:])
    scripts = [a for t, a in parsed.tags if t == "script"]
    assert scripts == [{"type": "module", "src": scripts[0]["src"]}]
    assert (scripts[0]["src"] or "").startswith("_assets/")
    assert re.findall(r'^import .*? from "([^"]+)";', _static("waiting.js"), re.M | re.S) == [
        "./waiting-i18n.mjs",
        "./waiting-logic.mjs",
    ]
    assert re.search(r"https?://", page) is None
    assert "@import" not in page and "@font-face" not in page
    assert re.search(r"url\(", page) is None


def test_the_script_calls_only_the_rooms_own_routes() -> None:
    page = _script()
    calls = re.findall(r'request\("([^"]+)"', page)
    assert sorted(set(calls)) == ["/challenge", "/join", "/status"]
    assert "Idempotency-Key" in page
    assert '"Authorization": "Bearer "' in page
    assert "waitingroom:ticket:" in page


@pytest.mark.parametrize(
    "room",
    [
        '"><script>alert(1)</script>',
        "</script><img src=x onerror=alert(1)>",
        "a' onmouseover='alert(1)",
        "__WAITINGROOM_ROOM__",
        "&amp;",
    ],
)
def test_a_hostile_room_name_stays_text(room: str) -> None:
    page = render_waiting_page(room)
    parsed = _parse(room)
    assert [t for t, _ in parsed.tags].count("script") == 1
    assert not [t for t, _ in parsed.tags if t == "img"]
    assert all(not n.startswith("on") for _, a in parsed.tags for n in a)
    queue = next(a for t, a in parsed.tags if a.get("id") == "queue")
    assert queue["data-room"] == room  # the script reads back exactly the name it was given
    assert room in "".join(parsed.text)  # shown as text, not markup
    assert "<script>alert" not in page and "<img" not in page
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    assert title is not None and "<" not in title.group(1)


def test_the_page_is_accessible_and_phone_ready() -> None:
    page = _everything()
    parsed = _parse("demo")
    html_tag = next(a for t, a in parsed.tags if t == "html")
    assert html_tag.get("lang") == "en"
    live = [a for _, a in parsed.with_attr("aria-live")]
    assert any(a["aria-live"] == "polite" for a in live)
    bars = [a for _, a in parsed.tags if _ == "progress" or a.get("role") == "progressbar"]
    assert bars and all("aria-valuenow" in a or "value" in a for a in bars)
    assert all("aria-label" in a or "aria-labelledby" in a for a in bars)
    headings = [t for t, _ in parsed.tags if t == "h1"]
    assert headings, "each state has a heading"
    viewport = [a for t, a in parsed.tags if t == "meta" and a.get("name") == "viewport"]
    assert viewport and "width=device-width" in (viewport[0].get("content") or "")
    assert "prefers-reduced-motion: reduce" in page
    assert "prefers-color-scheme: dark" in page


def test_the_page_is_a_pure_function_of_the_room() -> None:
    assert render_waiting_page("demo") == render_waiting_page("demo")
    assert render_waiting_page("demo") != render_waiting_page("other")


def test_the_script_solves_a_proof_of_work_the_server_accepts() -> None:
    """The page's own solver (solve, imported from the page's logic module) run by node."""
    import json
    import shutil
    import subprocess

    from waitingroom.tokens import Challenge, sign_challenge, solves

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    page = _script()
    assert 'crypto.subtle.digest("SHA-256"' in page and "setTimeout(slice, 0)" in page
    assert '"X-Challenge-Solution"' in page and '"challenge_required"' in page
    text = sign_challenge(b"k" * 16, Challenge("demo", "ab" * 16, 2_000_000_000, 10))
    with resources.as_file(resources.files("waitingroom") / "static" / "waiting-logic.mjs") as f:
        script = (
            f"import {{ solve }} from {json.dumps(f.as_uri())};\n"
            f"solve({json.dumps(text)}, 10).then(function (s) {{ console.log(s); }});"
        )
        out = subprocess.run(
            [node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=30
        )
    assert out.returncode == 0, out.stderr
    assert solves(text, out.stdout.strip(), 10)
