"""A room's page settings kept by DynamoDB (Local) exactly as set, and cleared again."""

from __future__ import annotations

import dataclasses
import json

from tests.conftest import Api
from tests.unit.test_page_template import GOOD
from waitingroom import rooms
from waitingroom.domain import RoomConfig
from waitingroom.store import Store


def test_a_rooms_look_is_kept_by_dynamodb_as_set(store: Store) -> None:
    cfg = RoomConfig(
        room="demo",
        max_active=10,
        page_title="Acme · 東京",
        page_logo_url="https://img.example.com/logo.png",
        page_accent_color="#b91c1c",
        page_background_color="#fef3c7",
        page_message="line one\nline two",
        page_template=GOOD,
    )
    saved = store.put_room_config(cfg, expected_version=None)
    assert store.get_room_config("demo", consistent=True) == saved
    cleared = dataclasses.replace(saved, page_title="", page_template="")
    store.put_room_config(cleared, expected_version=saved.version)
    back = store.get_room_config("demo", consistent=True)
    assert back is not None and (back.page_title, back.page_template) == ("", "")


def test_an_operator_can_set_a_template_of_full_length_in_any_script(api: Api) -> None:
    """Operators' bodies may be larger than visitors': a page template at its full length,
    JSON-escaped (each Japanese character six bytes), is taken; one character more is a 422."""
    room_tail = "<p>{{message}}</p>"
    limit = rooms.PAGE_TEMPLATE.max_length
    assert limit is not None
    filler = "東" * (limit - len(GOOD) - len("<p></p>"))
    template = GOOD.replace(room_tail, room_tail + "<p>" + filler + "</p>")
    assert len(template) == limit
    headers = {**api.admin, "content-type": "application/json"}
    body = json.dumps({"max_active": 5, "page_template": template})
    assert len(body) > 6 * len(filler)  # far over the 16 KB visitors' bodies may have
    r = api.client.put("/admin/rooms/big", content=body, headers=headers)
    assert r.status_code in (200, 201), r.text
    assert filler in api.client.get("/rooms/big", headers={"accept": "text/html"}).text

    body = json.dumps({"max_active": 5, "page_template": template + "東"})
    r = api.client.put("/admin/rooms/big", content=body, headers=headers)
    assert r.status_code == 422 and "page_template" in r.json()["message"], r.text
