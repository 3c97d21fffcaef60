"""Room settings are defined once (waitingroom.rooms); everything that lists them agrees."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from waitingroom.api import create_app
from waitingroom.api.models import RoomConfigIn, RoomOut
from waitingroom.cli import build_parser
from waitingroom.domain import RoomConfig
from waitingroom.rooms import BY_NAME, ROOM_FIELDS, RoomField
from waitingroom.settings import ApiSettings
from waitingroom.tokens import MAX_CHALLENGE_BITS

NAMES = [f.name for f in ROOM_FIELDS]
INTS = [f for f in ROOM_FIELDS if f.kind == "int"]


def test_room_config_holds_the_settings_in_order_with_their_defaults() -> None:
    fields = {f.name: f for f in dataclasses.fields(RoomConfig)}
    assert [n for n in fields if n not in ("room", "epoch_slot", "version")] == NAMES
    for spec in ROOM_FIELDS:
        default = fields[spec.name].default
        if spec.required:
            assert default is dataclasses.MISSING, spec.name
        else:
            assert default == spec.default, spec.name


def test_every_setting_is_well_formed() -> None:
    assert len(BY_NAME) == len(ROOM_FIELDS)
    for spec in ROOM_FIELDS:
        assert spec.description and "\n" not in spec.description, spec.name
        if spec.kind == "int":
            assert spec.ge is not None and spec.le is not None and spec.ge <= spec.le, spec.name
            assert spec.required or spec.ge <= spec.default <= spec.le, spec.name
        else:
            assert spec.ge is None and spec.le is None, spec.name


def test_challenge_bits_are_bounded_like_the_proof_of_work_check() -> None:
    assert BY_NAME["challenge_bits"].le == MAX_CHALLENGE_BITS


def test_the_api_bodies_hold_exactly_the_settings() -> None:
    assert list(RoomConfigIn.model_fields) == NAMES
    assert list(RoomOut.model_fields) == ["room", *NAMES, "version"]


def test_the_openapi_document_shows_each_settings_bounds_and_description() -> None:
    schemas = create_app(None, None).openapi()["components"]["schemas"]
    body, out = schemas["RoomConfigIn"], schemas["RoomOut"]
    assert body["additionalProperties"] is False
    assert set(out["required"]) == {"room", *NAMES, "version"}
    for spec in ROOM_FIELDS:
        assert body["properties"][spec.name]["description"] == spec.description
        assert out["properties"][spec.name]["description"] == spec.description
        if spec.kind == "int":
            variants = body["properties"][spec.name]["anyOf"]
            bounded = next(v for v in variants if v["type"] == "integer")
            assert bounded == {"type": "integer", "minimum": spec.ge, "maximum": spec.le}


@pytest.mark.parametrize("spec", INTS, ids=[f.name for f in INTS])
def test_the_api_refuses_out_of_bounds_and_non_integer_values(spec: RoomField[Any]) -> None:
    assert spec.ge is not None and spec.le is not None
    for ok in (spec.ge, spec.le):
        RoomConfigIn.model_validate({spec.name: ok})
    for bad in (spec.ge - 1, spec.le + 1, str(spec.ge), float(spec.ge)):
        with pytest.raises(ValidationError):
            RoomConfigIn.model_validate({spec.name: bad})


def _settings(**values: Any) -> ApiSettings:
    return ApiSettings(ticket_secret=SecretStr("x" * 16), **values)


def test_environment_defaults_are_room_settings_bounded_like_the_api() -> None:
    defaults = [n.removeprefix("default_") for n in ApiSettings.model_fields if "default_" in n]
    assert defaults and set(defaults) <= set(NAMES)
    for name in defaults:
        spec = BY_NAME[name]
        assert spec.ge is not None and spec.le is not None
        assert _settings(**{f"default_{name}": spec.ge}).room_defaults() == {name: spec.ge}
        assert _settings(**{f"default_{name}": spec.le}).room_defaults() == {name: spec.le}
        for bad in (spec.ge - 1, spec.le + 1):
            with pytest.raises(ValidationError):
                _settings(**{f"default_{name}": bad})


def _rooms_command() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    rooms: argparse.ArgumentParser = sub.choices["rooms"]
    return rooms


def test_the_cli_has_a_flag_for_every_setting_with_its_description() -> None:
    by_dest = {a.dest: a for a in _rooms_command()._actions}
    for spec in ROOM_FIELDS:
        action = by_dest[spec.name]
        assert spec.flag in action.option_strings
        assert action.help is not None and action.help.startswith(spec.description)
    assert "--no-bind-tokens" in by_dest["bind_tokens"].option_strings
    assert by_dest["status"].choices == ("scheduled", "open", "paused", "closed")
    help_text = _rooms_command().format_help()
    assert all(spec.flag in help_text for spec in ROOM_FIELDS)


def test_the_cli_leaves_out_what_is_not_given() -> None:
    args = build_parser().parse_args(
        ["rooms", "create", "r", "--challenge-bits", "4", "--bind-tokens", "--opens-at", "12.5"]
    )
    given = {spec.name: getattr(args, spec.name) for spec in ROOM_FIELDS}
    assert {k: v for k, v in given.items() if v is not None} == {
        "challenge_bits": 4,
        "bind_tokens": True,
        "opens_at": 12.5,
    }
