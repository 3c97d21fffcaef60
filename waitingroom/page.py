"""The waiting page at /rooms/{room} and the files it loads, served from `waitingroom/static/`.

The page is plain HTML, CSS and JS files in the package: no inline script or style, so its
Content-Security-Policy needs no 'unsafe-inline', and the script's logic is tested by node
(tests/js/). The files are read once per process, on first use. Each asset is served under a name
carrying a hash of its content (`waiting.<hash>.css`) and cached for a year; the page itself is
cached for a minute by browsers and the edge (then revalidated by its ETag): a crowd loading it
costs the API one request a minute per edge cache, and a new deploy reaches visitors within it.
Asset URLs are relative to the page (`_assets/...` from `/rooms/{room}`), so the page works
behind any prefix (an API Gateway stage, a CDN path).

Operators make the page their own with the room's page_* settings: a title, a logo, a message
and colours fill the default page (waiting.html), or their own template takes its place
(checked by `page_template`; `{{head}}` and `{{queue}}` bring in the page's files and its live
part). The colours are a small style block the CSP allows by its hash, not a per-room stylesheet:
the page and its colours are one answer, cached together for the same minute, so a change
reaches every visitor within it, with no second request and no flash of the default colours.

The page's words are English in the files and translated in the browser from one JSON file per
language (static/locales/), chosen from the visitor's own choice or navigator.languages. The
page is the same for every language, so the edge keeps one copy per room: a `Vary:
Accept-Language` page would be a copy per distinct header (CloudFront ignores Vary, so it would
need the header in its cache key), for the same words.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Response

from waitingroom.domain import RoomConfig
from waitingroom.page_template import PLACEHOLDER, TemplateError, check_template
from waitingroom.rooms import origin_of

router = APIRouter()
log = logging.getLogger("waitingroom.page")

# In import order: a file may import an earlier one ("./waiting-logic.mjs"), and is served
# importing it by its hashed name.
_ASSET_FILES = ("waiting-i18n.mjs", "waiting-logic.mjs", "waiting.css", "waiting.js")
_MEDIA_TYPES = {
    "css": "text/css",
    "js": "text/javascript",
    "mjs": "text/javascript",
    "json": "application/json",
}
_ASSET_NAME = re.compile(r"\{\{([\w.-]+\.(?:css|js|mjs))\}\}")
DEFAULT_LANGUAGE = "en"

_CSP = {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "base-uri": "'none'",
    "form-action": "'none'",
    "frame-ancestors": "'none'",
}
# also the CSP of the API's own /docs page (waitingroom.api.docs)
PAGE_CSP = "; ".join(f"{k} {v}" for k, v in _CSP.items())
_PAGE_HEADERS = {
    "Cache-Control": "public, max-age=60",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# an unknown room's page: not cached, so the edge does not keep it once the room is created
_NOT_FOUND_HEADERS = {**_PAGE_HEADERS, "Cache-Control": "no-store"}
_ASSET_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
}


@dataclass(frozen=True)
class _Asset:
    body: bytes
    media_type: str
    etag: str


@dataclass(frozen=True)
class _Files:
    template: str  # waiting.html: the default page, filled like an operator's template
    head: str  # what {{head}} stands for, the assets' hashed names filled in
    queue: str  # what {{queue}} stands for; its room and title still to fill
    not_found: str  # the page of an unknown room
    unavailable: str  # the page while the store is not answering
    assets: Mapping[str, _Asset]  # by hashed name


def _static(name: str) -> resources.abc.Traversable:
    return resources.files("waitingroom") / "static" / name


def _read(name: str) -> str:
    return _static(name).read_text(encoding="utf-8")


def _fingerprint(name: str, text: str) -> tuple[str, _Asset]:
    body = text.encode()
    digest = hashlib.sha256(body).hexdigest()[:16]
    stem, _, ext = name.rpartition(".")
    return f"{stem}.{digest}.{ext}", _Asset(body, _MEDIA_TYPES[ext], f'"{digest}"')


def _languages(assets: dict[str, _Asset]) -> tuple[str, str]:
    """The page's languages: one file each in static/locales (adding a language is adding its
    file). Returns the locale URLs by language (for the script) and the switch's buttons."""
    urls: dict[str, str] = {}
    buttons: list[str] = []
    files = sorted(_static("locales").iterdir(), key=lambda f: (f.name != "en.json", f.name))
    for entry in files:
        code = entry.name.removesuffix(".json")
        text = entry.read_text(encoding="utf-8")
        served, asset = _fingerprint(f"locale-{code}.json", text)
        assets[served] = asset
        urls[code] = f"_assets/{served}"
        name = html.escape(str(json.loads(text)["language_name"]))
        buttons.append(
            f'<button type="button" class="language" lang="{code}" data-language="{code}">'
            f"{name}</button>"
        )
    return json.dumps(urls, separators=(",", ":")), "".join(buttons)


@functools.cache
def _files() -> _Files:
    hashed: dict[str, str] = {}
    assets: dict[str, _Asset] = {}
    for name in _ASSET_FILES:
        text = _read(name)
        for earlier, served in hashed.items():
            text = text.replace(f'"./{earlier}"', f'"./{served}"')
        hashed[name], asset = _fingerprint(name, text)
        assets[hashed[name]] = asset
    locales, buttons = _languages(assets)

    def named(text: str) -> str:
        return _ASSET_NAME.sub(lambda m: hashed[m[1]], text)

    queue = _read("queue.html").replace("{{locales}}", html.escape(locales, quote=True))
    return _Files(
        template=_read("waiting.html"),
        head=named(_read("head.html")).strip(),
        queue=queue.replace("{{languages}}", buttons).strip(),
        not_found=named(_read("not-found.html")),
        unavailable=named(_read("unavailable.html")),
        assets=MappingProxyType(assets),
    )


def visitor_files(language: str = "ja") -> dict[str, bytes]:
    """What one visitor's browser loads for the default page: the page, its files, and the
    words of `language` (none for English, the page's own language), by served name."""
    files = _files()
    loaded = {"waiting.html": render_waiting_page("demo").encode()}
    for name, asset in files.assets.items():
        if not name.startswith("locale-") or (
            name.startswith(f"locale-{language}.") and (language != DEFAULT_LANGUAGE)
        ):
            loaded[name] = asset.body
    return loaded


# -- a room's own look -----------------------------------------------------------------------


def _text_on(color: str) -> str:
    """Black or white, whichever reads better on `color` (#rrggbb), by WCAG contrast."""

    def linear(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(int(color[i : i + 2], 16)) for i in (1, 3, 5))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#000000" if (luminance + 0.05) / 0.05 > 1.05 / (luminance + 0.05) else "#ffffff"


def brand_css(cfg: RoomConfig | None) -> str:
    """The room's colours as CSS custom properties over waiting.css's ("": the defaults).

    Only validated #rrggbb values reach it (the API refuses anything else), and the page's CSP
    allows exactly this block by its hash: no 'unsafe-inline'.
    """
    if cfg is None:
        return ""
    props = []
    if cfg.page_accent_color:
        accent = cfg.page_accent_color
        props += [f"--accent:{accent}", f"--accent-text:{_text_on(accent)}"]
    if cfg.page_background_color:
        props.append(f"--bg:{cfg.page_background_color}")
    return ":root{" + ";".join(props) + "}" if props else ""


def _own_template(cfg: RoomConfig | None) -> str:
    """The room's own template, or "" for the default page: also when a template stored before
    a stricter check no longer passes it (the API refuses it now; visitors get the default
    page, not an error, and the log says why)."""
    if cfg is None or not cfg.page_template:
        return ""
    try:
        check_template(cfg.page_template)
    except TemplateError as exc:
        log.warning("room %s: its page template is not used: %s", cfg.room, exc)
        return ""
    return cfg.page_template


def page_csp(cfg: RoomConfig | None) -> str:
    """The page's Content-Security-Policy: the default one, plus the room's own style block
    (by hash), its logo's site and the sites its template loads images and stylesheets from."""
    csp = dict(_CSP)
    css = brand_css(cfg)
    if css:
        digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
        csp["style-src"] += f" 'sha256-{digest}'"
    logo = origin_of(cfg.page_logo_url) if cfg is not None else None
    if logo:  # the API refuses any other logo URL; one stored before that is left out
        csp["img-src"] += " " + logo
    template = _own_template(cfg)
    if template:
        sources = check_template(template)
        csp["img-src"] = " ".join(dict.fromkeys([*csp["img-src"].split(), *sources.images]))
        csp["style-src"] += "".join(f" {s}" for s in sources.styles)
    return "; ".join(f"{k} {v}" for k, v in csp.items())


def render_waiting_page(room: str, cfg: RoomConfig | None = None) -> str:
    """The page for `room`, in the room's own template and look when `cfg` has them.

    A pure function of the room and its settings. Every value an operator or a URL gave (the
    room, title, message, logo) appears only HTML-escaped, never inside the script; the
    template is filled in one pass, so a value that looks like a placeholder stays text.
    """
    files = _files()
    title = cfg.page_title if cfg is not None and cfg.page_title else f"Waiting room · {room}"
    logo = cfg.page_logo_url if cfg is not None else ""
    css = brand_css(cfg)
    head = files.head + (f"\n<style>{css}</style>" if css else "")
    queue = files.queue.replace("{{default_title}}", "" if cfg and cfg.page_title else "1")
    queue = queue.replace("{{room}}", html.escape(room, quote=True))
    values = {
        "head": head,
        "queue": queue,
        "title": html.escape(title, quote=True),
        "message": html.escape(cfg.page_message if cfg else "", quote=True),
        "logo_url": html.escape(logo, quote=True),
        "logo": f'<img class="logo" src="{html.escape(logo, quote=True)}" alt="">' if logo else "",
        "room": html.escape(room, quote=True),
    }
    template = _own_template(cfg) or files.template
    return PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), template)


def _matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match compares weakly (RFC 9110 13.1.2): a W/ prefix does not matter."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


def _answer(
    body: bytes, media_type: str, etag: str, if_none_match: str | None, headers: dict[str, str]
) -> Response:
    headers = {**headers, "ETag": etag}
    if _matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def waiting_page_response(
    room: str, if_none_match: str | None, cfg: RoomConfig | None = None
) -> Response:
    """The waiting page of a room the caller has checked exists."""
    body = render_waiting_page(room, cfg).encode()
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {**_PAGE_HEADERS, "Content-Security-Policy": page_csp(cfg)}
    return _answer(body, "text/html", etag, if_none_match, headers)


def unavailable_page(retry_after: int) -> Response:
    """What a browser gets for the waiting page while the store is not answering: a page that
    reloads itself (a meta refresh: no script), with Retry-After, not the API's JSON."""
    body = _files().unavailable.replace("{{retry}}", str(retry_after))
    headers = {
        **_NOT_FOUND_HEADERS,
        "Content-Security-Policy": PAGE_CSP,
        "Retry-After": str(retry_after),
    }
    return Response(body, status_code=503, media_type="text/html", headers=headers)


def not_found_page(room: str) -> Response:
    """What a browser gets for a room that does not exist: a page, not the API's JSON."""
    body = _files().not_found.replace("{{room}}", html.escape(room, quote=True))
    headers = {**_NOT_FOUND_HEADERS, "Content-Security-Policy": PAGE_CSP}
    return Response(body, status_code=404, media_type="text/html", headers=headers)


# "_assets" can never be a room id (rooms start with a letter or digit)
@router.get("/rooms/_assets/{name}", include_in_schema=False)
async def asset(name: str, if_none_match: Annotated[str | None, Header()] = None) -> Response:
    """One of the page's files, by its hashed name."""
    found = _files().assets.get(name)
    if found is None:  # answered in the API's error shape, like any 404
        raise HTTPException(404, f"no page asset named {name!r}; if the page is old, reload it")
    return _answer(found.body, found.media_type, found.etag, if_none_match, _ASSET_HEADERS)
