"""The waiting page at /rooms/{room} and the files it loads, served from `waitingroom/static/`.

The page is plain HTML, CSS and JS files in the package: no inline script or style, so its
Content-Security-Policy needs no 'unsafe-inline', and the script's logic is tested by node
(tests/js/). The files are read once per process, on first use. Each asset is served under a name
carrying a hash of its content (`waiting.<hash>.css`) and cached for a year; the page itself is
cached for a minute by browsers and the edge (then revalidated by its ETag): a crowd loading it
costs the API one request a minute per edge cache, and a new deploy reaches visitors within it.
Asset URLs are relative to the page (`_assets/...` from `/rooms/{room}`), so the page works
behind any prefix (an API Gateway stage, a CDN path).
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Response

router = APIRouter()

# In import order: a file may import an earlier one ("./waiting-logic.mjs"), and is served
# importing it by its hashed name.
_ASSET_FILES = ("waiting-logic.mjs", "waiting.css", "waiting.js")
_MEDIA_TYPES = {"css": "text/css", "js": "text/javascript", "mjs": "text/javascript"}
_PLACEHOLDER = re.compile(r"\{\{([\w.-]+)\}\}")
_ROOM = "{{room}}"

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Cache-Control": "public, max-age=60",
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
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
    page: str  # waiting.html with the assets' hashed names filled in; the room still to fill
    assets: Mapping[str, _Asset]  # by hashed name


def _read(name: str) -> str:
    return (resources.files("waitingroom") / "static" / name).read_text(encoding="utf-8")


@functools.cache
def _files() -> _Files:
    hashed: dict[str, str] = {}
    assets: dict[str, _Asset] = {}
    for name in _ASSET_FILES:
        text = _read(name)
        for earlier, served in hashed.items():
            text = text.replace(f'"./{earlier}"', f'"./{served}"')
        body = text.encode()
        digest = hashlib.sha256(body).hexdigest()[:16]
        stem, _, ext = name.rpartition(".")
        hashed[name] = f"{stem}.{digest}.{ext}"
        assets[hashed[name]] = _Asset(body, _MEDIA_TYPES[ext], f'"{digest}"')

    def fill(match: re.Match[str]) -> str:
        return match[0] if match[0] == _ROOM else hashed[match[1]]

    page = _PLACEHOLDER.sub(fill, _read("waiting.html"))
    return _Files(page, MappingProxyType(assets))


def render_waiting_page(room: str) -> str:
    """The page for `room`; everything it needs comes from the API's own routes.

    A pure function of `room`: it appears only HTML-escaped (text and a quoted attribute the
    script reads), never inside the script, so no name can break out of its context.
    """
    return _files().page.replace(_ROOM, html.escape(room, quote=True))


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


def waiting_page_response(room: str, if_none_match: str | None) -> Response:
    """The waiting page of a room the caller has checked exists."""
    body = render_waiting_page(room).encode()
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    return _answer(body, "text/html", etag, if_none_match, _PAGE_HEADERS)


# "_assets" can never be a room id (rooms start with a letter or digit)
@router.get("/rooms/_assets/{name}", include_in_schema=False)
async def asset(name: str, if_none_match: Annotated[str | None, Header()] = None) -> Response:
    """One of the page's files, by its hashed name."""
    found = _files().assets.get(name)
    if found is None:  # answered in the API's error shape, like any 404
        raise HTTPException(404, f"no page asset named {name!r}; if the page is old, reload it")
    return _answer(found.body, found.media_type, found.etag, if_none_match, _ASSET_HEADERS)
