"""The API's documentation at /docs: Swagger UI served by the app itself, so it works without
internet and loads nothing from another host (FastAPI's own page takes Swagger UI from a CDN and
starts it with an inline script, which a tight Content-Security-Policy refuses).

Swagger UI's files come from the `fastapi-offline` package (which ships them); the page and its
start-up script are this folder's `swagger/`. Served only where that package is installed (the
local stack, a plain `pip install`): the Lambda bundles leave it out, as API Gateway routes
neither /docs nor /openapi.json. ReDoc is not served.
"""

from __future__ import annotations

import functools
import importlib.util
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, HTTPException, Response

from waitingroom.page import PAGE_CSP

DOCS_URL = "/docs"
DOCS_CSP = PAGE_CSP  # the waiting page's: our own files only, no inline script or style
_MEDIA_TYPES = {"js": "text/javascript", "css": "text/css", "png": "image/png"}
_VENDORED = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")
_OURS = ("swagger-init.js",)
_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def _vendor_dir() -> Path | None:
    """fastapi-offline's static files, found without importing it; None when not installed."""
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    return folder if all((folder / name).is_file() for name in _VENDORED) else None


@functools.cache
def _read(name: str) -> bytes:
    """A file of the docs page, read once per process (on first use, never at import)."""
    if name in _OURS or name == "swagger.html":
        return (resources.files("waitingroom.api") / "swagger" / name).read_bytes()
    folder = _vendor_dir()
    assert folder is not None  # install() serves vendored files only when they exist
    return (folder / name).read_bytes()


def install(app: FastAPI) -> None:
    """Serve /docs and its files from the app when Swagger UI's files are installed."""
    if _vendor_dir() is None:
        return
    app.docs_url = DOCS_URL  # tells whoever inspects the app where its docs are

    @app.get(DOCS_URL, include_in_schema=False)
    def docs_page() -> Response:
        headers = {**_HEADERS, "Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-cache"}
        return Response(_read("swagger.html"), media_type="text/html", headers=headers)

    @app.get(DOCS_URL + "/{name}", include_in_schema=False)
    def docs_file(name: str) -> Response:
        if name not in _VENDORED + _OURS:
            raise HTTPException(404, f"no docs file named {name!r}; open {DOCS_URL}")
        media_type = _MEDIA_TYPES[name.rpartition(".")[2]]
        headers = {**_HEADERS, "Cache-Control": "public, max-age=86400"}
        return Response(_read(name), media_type=media_type, headers=headers)
