"""The origins an admitted visitor may be sent back to: a room setting, checked when it is set
and handed to the waiting page with the admission (on DynamoDB Local)."""

from __future__ import annotations

import pytest

from tests.conftest import Api, FakeClock
from waitingroom.domain import SETTLE_DELAY_SECONDS
from waitingroom.drainer import Drainer

pytestmark = pytest.mark.integration


def test_the_setting_is_kept_as_plain_origins(api: Api) -> None:
    body = {
        "max_active": 2,
        "origin_url": "https://shop.example/",
        "return_origins": "https://WWW.shop.example, http://127.0.0.1:8000/ https://www.shop.example",
    }
    r = api.client.put("/admin/rooms/shop", json=body, headers=api.admin)
    assert r.status_code == 201, r.text
    assert r.json()["return_origins"] == "https://www.shop.example http://127.0.0.1:8000"
    kept = api.client.put("/admin/rooms/shop", json={"max_active": 3}, headers=api.admin)
    assert kept.json()["return_origins"] == "https://www.shop.example http://127.0.0.1:8000"
    r = api.client.put("/admin/rooms/shop", json={"return_origins": ""}, headers=api.admin)
    assert r.status_code == 200 and r.json()["return_origins"] == ""


@pytest.mark.parametrize(
    "origins",
    [
        "www.shop.example",
        "https://www.shop.example/path",
        "https://www.shop.example/?next=1",
        "javascript:alert(1)",
        "https://user@www.shop.example",
        "https://www.shop.example:99999",
        "ftp://files.shop.example",
        " ".join(f"https://a{i}.shop.example" for i in range(21)),
    ],
)
def test_anything_but_origins_is_a_4xx_saying_what_to_fix(api: Api, origins: str) -> None:
    body = {"max_active": 2, "return_origins": origins}
    r = api.client.put("/admin/rooms/shop", json=body, headers=api.admin)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_config"
    assert "return_origins" in r.json()["message"]


def test_the_admission_tells_the_page_where_else_it_may_go(
    api: Api, drainer: Drainer, clock: FakeClock
) -> None:
    body = {
        "max_active": 2,
        "origin_url": "https://shop.example/",
        "return_origins": "https://www.shop.example",
    }
    assert api.client.put("/admin/rooms/shop", json=body, headers=api.admin).status_code == 201
    ticket = api.client.post("/rooms/shop/join").json()["ticket"]
    clock.advance(1 + SETTLE_DELAY_SECONDS)
    drainer.tick_room("shop")
    r = api.client.get("/rooms/shop/status", headers={"Authorization": f"Bearer {ticket}"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "admitted"
    assert r.json()["origin_url"] == "https://shop.example/"
    assert r.json()["return_origins"] == ["https://www.shop.example"]
