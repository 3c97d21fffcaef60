"""/docs in Debian's chromium with every request to another host refused, as on a machine
without internet: Swagger UI renders the API's operations, under the page's CSP, with no error."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Request, Route

from tests.conftest import serve
from waitingroom.api import create_app

pytestmark = pytest.mark.browser


def test_the_api_docs_render_offline(browser: Browser) -> None:
    with serve(create_app(None, None)) as url:
        page = browser.new_page()
        problems: list[str] = []
        elsewhere: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))

        def only_this_host(route: Route, request: Request) -> None:
            if request.url.startswith(f"{url}/"):
                route.continue_()
            else:
                elsewhere.append(request.url)
                route.abort()

        page.route("**/*", only_this_host)
        page.goto(f"{url}/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
        assert page.inner_text(".swagger-ui .info .title").startswith("waitingroom")
        assert page.locator(".opblock").count() >= 10  # joins, polls, operators' routes...
        page.get_by_text("/rooms/{room}/join").first.click()
        page.wait_for_selector(".opblock.is-open", timeout=5_000)
        page.close()
    assert elsewhere == []
    assert problems == []
