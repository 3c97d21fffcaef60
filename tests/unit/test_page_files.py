"""The waiting page over HTTP: its files, their caching (ETag, 304, immutable) and its headers.

A tiny app wires `page.router`, a `/rooms/{room}` route and the error mapping the way the API
does.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import FastAPI, Header, Response
from fastapi.testclient import TestClient

from waitingroom import page
from waitingroom.api import errors

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    errors.install(app)
    app.include_router(page.router)

    @app.get("/rooms/{room}")
    def waiting_page(room: str, if_none_match: Annotated[str | None, Header()] = None) -> Response:
        return page.waiting_page_response(room, if_none_match)

    return TestClient(app)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text = ""
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text += data


def _tags(text: str) -> _Tags:
    parser = _Tags()
    parser.feed(text)
    parser.close()
    return parser


def _asset_urls(html: str) -> list[str]:
    """Every file the page loads, as it names it (relative to the page)."""
    return [
        a.get("src") or a.get("href") or ""
        for t, a in _tags(html).tags
        if (t == "script" and "src" in a) or (t == "link" and a.get("rel") != "icon")
    ]


def _url(relative: str) -> str:
    return "/rooms/" + relative  # resolved against /rooms/{room}, as a browser does


def test_the_page_sends_its_security_headers(client: TestClient) -> None:
    r = client.get("/rooms/demo")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=60"
    csp = r.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-frame-options"] == "DENY"


def test_the_page_needs_nothing_its_policy_blocks(client: TestClient) -> None:
    """No inline script, style or event handler: the CSP would block each of them."""
    parsed = _tags(client.get("/rooms/demo").text)
    assert parsed.script_text.strip() == ""
    assert not [t for t, _ in parsed.tags if t == "style"]
    for tag, attrs in parsed.tags:
        assert "style" not in attrs, f"<{tag} style=...>"
        assert not [n for n in attrs if n.startswith("on")], f"<{tag} on...=>"
        for name in ("href", "src", "action"):
            assert not (attrs.get(name) or "").lower().startswith("javascript:")


def test_a_repeated_page_request_with_its_etag_is_a_304(client: TestClient) -> None:
    first = client.get("/rooms/demo")
    etag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{16,}"', etag), "a strong ETag"
    again = client.get("/rooms/demo", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == "public, max-age=60"
    # a list, or the weak form a proxy may send back, matches too (If-None-Match is weak)
    for header in (f'"other", {etag}', f"W/{etag}", "*"):
        assert client.get("/rooms/demo", headers={"If-None-Match": header}).status_code == 304
    stale = client.get("/rooms/demo", headers={"If-None-Match": '"stale"'})
    assert stale.status_code == 200 and stale.content == first.content


def test_each_room_has_its_own_etag(client: TestClient) -> None:
    demo = client.get("/rooms/demo").headers["etag"]
    other = client.get("/rooms/other")
    assert other.headers["etag"] != demo
    assert client.get("/rooms/other", headers={"If-None-Match": demo}).status_code == 200


def test_the_room_id_is_html_escaped(client: TestClient) -> None:
    room = "\"'><img src=x onerror=alert(1)>&amp;"
    r = client.get(f"/rooms/{room}")
    assert r.status_code == 200
    assert "<img" not in r.text
    assert "&quot;&#x27;&gt;&lt;img src=x onerror=alert(1)&gt;&amp;amp;" in r.text
    queue = next(a for t, a in _tags(r.text).tags if a.get("id") == "queue")
    assert queue["data-room"] == room  # the script reads back exactly the room id


def test_the_assets_are_relative_to_the_page_and_fingerprinted(client: TestClient) -> None:
    urls = _asset_urls(client.get("/rooms/demo").text)
    assert len(urls) == 4
    for url in urls:
        assert re.fullmatch(r"_assets/[a-z0-9-]+\.[0-9a-f]{16}\.(css|js|mjs)", url), url


@pytest.mark.parametrize(
    ("kind", "media_type"),
    [("css", "text/css"), ("js", "text/javascript"), ("mjs", "text/javascript")],
)
def test_an_asset_is_served_with_its_type_and_cached_for_good(
    client: TestClient, kind: str, media_type: str
) -> None:
    url = next(u for u in _asset_urls(client.get("/rooms/demo").text) if u.endswith("." + kind))
    r = client.get(_url(url))
    assert r.status_code == 200
    assert r.headers["content-type"] == f"{media_type}; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["x-content-type-options"] == "nosniff"
    etag = r.headers["etag"]
    assert etag.strip('"') in url, "the ETag is the fingerprint"
    again = client.get(_url(url), headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_the_assets_are_the_package_files(client: TestClient) -> None:
    static = resources.files("waitingroom") / "static"
    urls = _asset_urls(client.get("/rooms/demo").text)
    css = next(u for u in urls if u.endswith(".css"))
    assert client.get(_url(css)).text == (static / "waiting.css").read_text(encoding="utf-8")
    words = next(u for u in urls if u.startswith("_assets/waiting-i18n."))
    assert client.get(_url(words)).text == (static / "waiting-i18n.mjs").read_text(encoding="utf-8")


def test_every_module_the_script_imports_is_served(client: TestClient) -> None:
    """waiting.js imports the logic module by its fingerprinted name, next to itself."""
    urls = _asset_urls(client.get("/rooms/demo").text)
    script = next(u for u in urls if u.endswith(".js"))
    imports = re.findall(r'from "\./([^"]+)"', client.get(_url(script)).text)
    assert imports == [u.removeprefix("_assets/") for u in urls if u.endswith(".mjs")]
    for name in imports:
        assert client.get(_url("_assets/" + name)).status_code == 200


@pytest.mark.parametrize(
    "name",
    ["nope.js", "waiting.css", "waiting.js", "waiting.0000000000000000.js", "page.py"],
)
def test_an_unknown_asset_is_a_404_in_the_api_error_shape(client: TestClient, name: str) -> None:
    r = client.get(f"/rooms/_assets/{name}")
    assert r.status_code == 404
    body = r.json()
    assert body["error"] == "not_found"
    assert isinstance(body["message"], str) and body["message"]
    assert "immutable" not in r.headers.get("cache-control", "")


def test_every_static_file_is_package_data() -> None:
    """The Lambda bundle copies the package, but a wheel carries only what package-data lists."""
    with PYPROJECT.open("rb") as f:
        patterns = tomllib.load(f)["tool"]["setuptools"]["package-data"]["waitingroom"]
    static = resources.files("waitingroom") / "static"
    names = [f"static/{entry.name}" for entry in static.iterdir() if entry.is_file()]
    assert names
    for name in names:
        assert any(fnmatch.fnmatch(name, p) for p in patterns), f"{name} is not package data"
