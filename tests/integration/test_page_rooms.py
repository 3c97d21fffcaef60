"""A room's page settings kept by DynamoDB (Local) exactly as set, and cleared again."""

from __future__ import annotations

import dataclasses

from tests.unit.test_page_template import GOOD
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
