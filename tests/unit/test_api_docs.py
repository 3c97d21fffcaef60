"""/docs works without internet: Swagger UI's files come from the app itself, under a CSP that
allows nothing else."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from waitingroom.api import create_app


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(None, None))


def _references(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]*)"', html)


def test_the_docs_page_references_no_other_host(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    refs = _references(page.text)
    assert len(refs) == 4  # the icon, the stylesheet, Swagger UI and the script that starts it
    assert not [r for r in refs if "//" in r or r.startswith("/")], refs  # relative: this host
    assert "http" not in page.text


def test_every_file_the_docs_page_references_is_served(client: TestClient) -> None:
    types = {"js": "text/javascript", "css": "text/css", "png": "image/png"}
    for ref in _references(client.get("/docs").text):
        r = client.get(f"/{ref}")
        assert r.status_code == 200, ref
        assert r.headers["content-type"].startswith(types[ref.rpartition(".")[2]]), ref
        assert "max-age" in r.headers["cache-control"]
    bundle = client.get("/docs/swagger-ui-bundle.js")
    assert len(bundle.content) > 500_000 and b"SwaggerUIBundle" in bundle.content


def test_the_docs_page_starts_on_the_apps_own_document_and_no_public_validator(
    client: TestClient,
) -> None:
    start = client.get("/docs/swagger-init.js").text
    assert '"openapi.json"' in start and "validatorUrl: null" in start
    assert client.get("/openapi.json").json()["info"]["title"] == "waitingroom"


def test_the_docs_csp_allows_only_this_host_and_no_inline_script(client: TestClient) -> None:
    csp = client.get("/docs").headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert "unsafe" not in csp and "http" not in csp


def test_unknown_docs_files_and_redoc_are_clear_404s(client: TestClient) -> None:
    r = client.get("/docs/swagger-ui.js.map")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert "/docs" in r.json()["message"]
    assert client.get("/docs/..%2Fpyproject.toml").status_code == 404
    assert client.get("/redoc").status_code == 404
