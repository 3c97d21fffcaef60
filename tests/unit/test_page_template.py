"""A room's own page: which templates are refused and why, how the page is filled, and the
policy that lets exactly the room's look through."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.conftest import ADMIN_KEY, TICKET_SECRET, wired_app
from waitingroom.api.models import RoomConfigIn
from waitingroom.domain import RoomConfig
from waitingroom.page import brand_css, page_csp, render_waiting_page
from waitingroom.page_template import TemplateError, check_template
from waitingroom.rooms import PAGE_TEMPLATE
from waitingroom.service import WaitingRoom
from waitingroom.settings import ApiSettings

GOOD = """<!doctype html>
<html lang="en"><head>{{head}}<title>{{title}}</title>
<link rel="stylesheet" href="https://cdn.example.com/brand.css"></head>
<body><header><img src="https://img.example.com/logo.svg" alt="{{title}}">{{logo}}</header>
<h1 class="x">{{ title }}</h1><p>{{message}}</p>{{queue}}
<footer><a href="https://example.com/help">Help</a> · {{room}}</footer></body></html>"""


@pytest.fixture
def api_client(memory_service: WaitingRoom) -> Iterator[TestClient]:
    """The API over the in-memory store."""
    settings = ApiSettings(
        ticket_secret=SecretStr(TICKET_SECRET.decode()),
        admin_key=SecretStr(ADMIN_KEY),
        cookie_secure=False,
    )
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    app = wired_app(memory_service, settings)
    with TestClient(app, raise_server_exceptions=False, headers=headers) as client:
        yield client


def _cfg(**page: Any) -> RoomConfig:
    return RoomConfig(room="demo", max_active=10, **page)


def _refusal(template: str) -> str:
    with pytest.raises(TemplateError) as caught:
        check_template(template)
    return str(caught.value)


def test_a_template_with_the_page_parts_is_accepted_with_the_sites_it_loads() -> None:
    sources = check_template(GOOD)
    assert sources.images == ("https://img.example.com",)
    assert sources.styles == ("https://cdn.example.com",)


@pytest.mark.parametrize(
    ("snippet", "why"),
    [
        ("<script>alert(1)</script>", "<script> block"),
        ("<SCRIPT src='https://evil.example/x.js'></SCRIPT>", "<script> block"),
        ("<svg><script>alert(1)</script></svg>", "<script> block"),
        ("<style>body{}</style>", "<style> block"),
        ('<img src="x.png" onerror="alert(1)">', "inline handler onerror="),
        ('<button onClick="go()">go</button>', "inline handler onclick="),
        ('<p style="color:red">hi</p>', "inline style="),
        ('<a href="javascript:alert(1)">x</a>', "javascript: URL"),
        ('<a href=" JaVa&#x53;cript:alert(1)">x</a>', "javascript: URL"),
        ('<a href="java\tscript:alert(1)">x</a>', "javascript: URL"),
        ('<iframe src="https://example.com"></iframe>', "<iframe>"),
        ('<base href="https://evil.example/">', "<base>"),
        ('<meta http-equiv="refresh" content="0;url=https://evil.example">', "http-equiv"),
        ('<form action="https://evil.example"><input></form>', "<form>"),
        ('<img src="data:text/html,hi">', "data: URL"),
        (
            '<svg><a><animate attributeName="href" values="javascript:alert(1)"/></a></svg>',
            "javascript: URL",
        ),
        ("<p>{{secret}}</p>", "unknown placeholder {{secret}}"),
        ('<div title="{{queue}}"></div>', "{{queue}} inside the <div> tag"),
    ],
)
def test_a_template_that_could_run_code_is_refused_saying_what_and_where(
    snippet: str, why: str
) -> None:
    template = GOOD.replace("<footer>", snippet + "<footer>")
    message = _refusal(template)
    assert why in message
    assert re.search(r"line \d+", message) or "placeholder" in message


def test_a_template_needs_the_page_parts_exactly_once() -> None:
    assert "{{queue}} must appear exactly once (found 0)" in _refusal(GOOD.replace("{{queue}}", ""))
    assert "{{head}} must appear exactly once (found 2)" in _refusal(GOOD + "{{head}}")


def test_the_api_refuses_a_bad_or_oversized_template_with_the_reason() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="<script> block"):
        RoomConfigIn.model_validate({"page_template": GOOD + "<script>x()</script>"})
    assert PAGE_TEMPLATE.max_length is not None
    big = GOOD + "<p>" + "x" * PAGE_TEMPLATE.max_length + "</p>"
    with pytest.raises(ValidationError, match="at most 16384 characters"):
        RoomConfigIn.model_validate({"page_template": big})
    RoomConfigIn.model_validate({"page_template": GOOD})
    RoomConfigIn.model_validate({"page_template": ""})  # back to the default page


@pytest.mark.parametrize(
    "settings",
    [
        {"page_accent_color": "red"},
        {"page_accent_color": "#12345"},
        {"page_background_color": "#1234567"},
        {"page_title": "x" * 121},
        {"page_message": "bell\x07"},
        {"page_logo_url": "javascript:alert(1)"},
    ],
)
def test_the_api_refuses_bad_look_settings(settings: dict[str, Any]) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        RoomConfigIn.model_validate(settings)


def test_the_api_answers_a_refused_template_with_a_422_that_says_why(
    api_client: TestClient,
) -> None:
    r = api_client.put(
        "/admin/rooms/tpl",
        json={"max_active": 5, "page_template": GOOD.replace("{{queue}}", "<script></script>")},
    )
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "invalid_request"
    assert "page_template" in body["message"] and "<script> block" in body["message"]
    assert "{{queue}} must appear exactly once" in body["message"]
    assert api_client.get("/admin/rooms/tpl/stats").status_code == 404, "nothing was created"


def test_a_custom_template_is_filled_with_escaped_values_in_one_pass() -> None:
    cfg = _cfg(
        page_template=GOOD,
        page_title='Acme "<b>" {{head}}',
        page_message="<script>alert(1)</script>\n{{queue}}",
    )
    html = render_waiting_page("demo", cfg)
    assert "Acme &quot;&lt;b&gt;&quot; {{head}}" in html  # a value is text, never re-filled
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\n{{queue}}" in html
    assert html.count('id="queue"') == 1 and html.count("<script") == 1
    assert 'data-room="demo"' in html and "{{" not in html.replace("{{head}}", "").replace(
        "{{queue}}", ""
    )


def test_the_default_page_carries_the_rooms_title_logo_and_message() -> None:
    cfg = _cfg(
        page_title="Acme Tickets",
        page_logo_url="https://img.example.com/logo.png",
        page_message="Doors open at 7pm",
    )
    html = render_waiting_page("demo", cfg)
    assert "<title>Acme Tickets</title>" in html
    assert '<img class="logo" src="https://img.example.com/logo.png" alt="">' in html
    assert '<p class="message">Doors open at 7pm</p>' in html
    assert 'data-default-title=""' in html  # the script leaves the operator's title alone
    plain = render_waiting_page("demo", _cfg())
    assert "<title>Waiting room · demo</title>" in plain and "<img" not in plain
    assert 'data-default-title="1"' in plain


def test_colours_reach_the_page_in_the_one_style_block_the_policy_allows() -> None:
    cfg = _cfg(page_accent_color="#b91c1c", page_background_color="#fef3c7")
    css = brand_css(cfg)
    assert css == ":root{--accent:#b91c1c;--accent-text:#ffffff;--bg:#fef3c7}"
    assert brand_css(_cfg(page_accent_color="#fde047")).count("--accent-text:#000000") == 1
    html = render_waiting_page("demo", cfg)
    assert html.count("<style>") == 1 and f"<style>{css}</style>" in html
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    directives = dict(d.strip().split(" ", 1) for d in page_csp(cfg).split(";"))
    assert directives["style-src"] == f"'self' 'sha256-{digest}'"
    assert "unsafe-inline" not in page_csp(cfg)
    assert "<style>" not in render_waiting_page("demo", _cfg())
    assert dict(d.strip().split(" ", 1) for d in page_csp(_cfg()).split(";"))["style-src"] == (
        "'self'"
    )


def test_the_policy_lets_in_the_logo_and_the_templates_sites_and_nothing_more() -> None:
    cfg = _cfg(page_logo_url="https://img.example.com:8443/a/logo.png", page_template=GOOD)
    directives = dict(d.strip().split(" ", 1) for d in page_csp(cfg).split(";"))
    assert (
        directives["img-src"] == "'self' data: https://img.example.com:8443 https://img.example.com"
    )
    assert directives["style-src"] == "'self' https://cdn.example.com"
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'self'"


def test_the_page_of_an_unknown_room_is_an_html_404_whatever_the_accept_header(
    api_client: TestClient,
) -> None:
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    # behind CloudFront the page route gets no Accept at all
    for accept in (browser, None, "application/json", "*/*"):
        for room in ("nosuchroom", "Bad_Name", "<img src=x onerror=alert(1)>", "x" * 64):
            headers = {"Accept": accept} if accept else {}
            r = api_client.get(f"/rooms/{room}", headers=headers)
            assert r.status_code == 404
            assert r.headers["content-type"].startswith("text/html")
            assert r.headers["cache-control"] == "no-store" and "vary" not in r.headers
            assert "There is no waiting room here" in r.text and "<img src=x" not in r.text
            assert "script-src 'self'" in r.headers["content-security-policy"]
    # the JSON routes keep the API's error
    r = api_client.get("/rooms/nosuchroom/state", headers={"Accept": "application/json"})
    assert r.status_code == 404 and r.json()["error"] == "unknown_room"
    assert api_client.post("/rooms/Bad_Name/join").json()["error"] == "invalid_room"


def test_a_rooms_look_set_by_the_api_is_on_its_next_page(api_client: TestClient) -> None:
    look = {
        "page_title": "Acme",
        "page_accent_color": "#b91c1c",
        "page_logo_url": "https://img.example.com/logo.png",
        "page_message": "Hello",
    }
    r = api_client.put("/admin/rooms/shop", json={"max_active": 5, **look})
    assert r.status_code == 201, r.text
    assert {k: r.json()[k] for k in look} == look
    page = api_client.get("/rooms/shop")
    assert "<title>Acme</title>" in page.text and "--accent:#b91c1c" in page.text
    assert "https://img.example.com" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "public, max-age=60"
    cleared = api_client.put("/admin/rooms/shop", json={"page_title": "", "page_logo_url": ""})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["page_title"] == "" and cleared.json()["page_logo_url"] == ""


def _directives(csp: str) -> list[str]:
    return [d.strip().split(" ", 1)[0] for d in csp.split(";")]


@pytest.mark.parametrize(
    "attack",
    [
        '<img src="https://x.example;connect-src *;frame-ancestors *">',
        '<link rel="stylesheet" href="https://x.example;form-action https:">',
        '<img src="https://x.example,connect-src/a.png">',
        '<img src="https://evil.example@img.example.com/a.png">',
        '<img src="https://img.example.com\\@evil.example/a.png">',
        '<img src="https://img example.com/a.png">',
        '<img src="//evil.example/a.png">',
    ],
)
def test_a_template_url_cannot_add_directives_to_the_pages_policy(attack: str) -> None:
    template = GOOD.replace("<footer>", attack + "<footer>")
    assert "must be a path on this site or an http(s) URL" in _refusal(template)


def test_the_policy_keeps_one_of_each_directive_whatever_the_logo_says() -> None:
    for logo in (
        "https://x.example;connect-src *;frame-ancestors *",
        "https://user:pw@img.example.com/logo.png",
    ):
        csp = page_csp(_cfg(page_logo_url=logo))
        names = _directives(csp)
        assert len(names) == len(set(names)), csp
        assert "*" not in csp and "user" not in csp and "frame-ancestors 'none'" in csp


@pytest.mark.parametrize(
    ("snippet", "why"),
    [
        (
            '<!--><meta http-equiv="refresh" content="0;url=https://evil.example/">-->',
            "HTML comment",
        ),
        ("<!-- a note for the next person -->", "HTML comment"),
        ('<![CDATA[><meta http-equiv="refresh" content="0;url=https://evil.example/">]]>', "<!"),
        ('<meta http-equiv="content-security-policy" content="img-src *">', "http-equiv"),
        ('<META HTTP-EQUIV="Set-Cookie" content="a=b">', "http-equiv"),
    ],
)
def test_markup_a_browser_reads_differently_from_the_check_is_refused(
    snippet: str, why: str
) -> None:
    message = _refusal(GOOD.replace("<footer>", snippet + "<footer>"))
    assert why in message and "line 6" in message


def test_the_hidden_refresh_of_a_comment_bypass_never_reaches_a_room(
    api_client: TestClient,
) -> None:
    hidden = (
        '<!--><meta http-equiv="refresh" content="0;url=https://evil.example/">'
        "<script>alert(1)</script>-->{{head}}{{queue}}"
    )
    r = api_client.put("/admin/rooms/tpl", json={"max_active": 5, "page_template": hidden})
    assert r.status_code == 422, r.text
    assert "HTML comment" in r.json()["message"]
    r = api_client.put(
        "/admin/rooms/tpl",
        json={"max_active": 5, "page_logo_url": "https://user:pw@img.example.com/a.png"},
    )
    assert r.status_code == 422 and "page_logo_url" in r.json()["message"], r.text
    assert api_client.get("/admin/rooms/tpl/stats").status_code == 404, "nothing was created"


def test_the_docs_page_and_the_waiting_page_share_one_policy() -> None:
    from waitingroom.api.docs import DOCS_CSP
    from waitingroom.page import PAGE_CSP

    assert DOCS_CSP is PAGE_CSP
    assert page_csp(None) == PAGE_CSP


def test_a_template_stored_before_a_stricter_check_gives_the_default_page_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    old = GOOD.replace("<footer>", "<!-- kept from an older release --><footer>")
    cfg = _cfg(page_template=old, page_title="Acme")
    page = render_waiting_page("demo", cfg)
    assert "kept from an older release" not in page and "<title>Acme" in page
    assert page_csp(cfg) == page_csp(_cfg(page_title="Acme"))
    assert "its page template is not used" in caplog.text
