"""infra/template.yaml: lint clean, translatable, wired to real code, least privilege.

The linters and the SAM translator live in the tools virtualenv (.venv-tools, made by
infra/check.sh); these tests call them as subprocesses and fail, never skip, when it is missing.
The last tests break a copy of the template on purpose and show that the checks notice.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from tests.infra import cfn_yaml
from tests.infra.checks import (
    API_HANDLER,
    DRAINER_HANDLER,
    GUARD_HANDLER,
    MAKEFILE,
    REQUIREMENTS,
    ROOT,
    TEMPLATE,
    app_route_problems,
    bundle_import_problem,
    cfn_lint,
    fastapi_routes,
    function_by_handler,
    functions,
    handler_problems,
    http_api_routes,
    least_privilege_problems,
    load_template,
    makefile_bundles,
    missing_tools,
    references,
    resources_of,
    room_default_problems,
    translate,
)
from waitingroom import table
from waitingroom.rooms import ROOM_FIELDS
from waitingroom.settings import ApiSettings

SAM = load_template()
FUNCTION_IDS = [f.logical_id for f in functions(SAM)]


@pytest.fixture(scope="session")
def tools() -> None:
    if problem := missing_tools():
        pytest.fail(problem)


Translate = Callable[[Path], dict[str, Any]]


@pytest.fixture(scope="session")
def translate_file(tools: None) -> Translate:
    def run(path: Path) -> dict[str, Any]:
        done = translate(path)
        assert done.returncode == 0, f"translate.py failed:\n{done.stderr}"
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    return run


@pytest.fixture(scope="session")
def cfn(translate_file: Translate) -> dict[str, Any]:
    return translate_file(TEMPLATE)


@pytest.fixture(scope="session")
def cfn_path(cfn: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfn") / "translated.json"
    path.write_text(json.dumps(cfn))
    return path


def broken_copy(tmp_path: Path, old: str, new: str) -> Path:
    text = TEMPLATE.read_text()
    assert text.count(old) == 1, f"{old!r} should occur once in the template"
    path = tmp_path / "template.yaml"
    path.write_text(text.replace(old, new))
    return path


def default(name: str) -> int:
    return int(SAM["Parameters"][name]["Default"])


# ------------------------------------------------------------------ linters
def test_cfn_lint_passes_on_the_sam_template(tools: None) -> None:
    done = cfn_lint(TEMPLATE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_cfn_lint_passes_on_the_translated_template(cfn_path: Path) -> None:
    done = cfn_lint(cfn_path)
    assert done.returncode == 0, done.stdout + done.stderr


# ------------------------------------------------------------------ code the template points at
@pytest.mark.parametrize("logical_id", FUNCTION_IDS)
def test_every_handler_resolves_to_a_function(logical_id: str) -> None:
    sam = {**SAM, "Resources": {logical_id: SAM["Resources"][logical_id]}}
    assert handler_problems(sam, MAKEFILE.read_text()) == []


def test_the_three_entry_points_are_the_ones_the_code_defines() -> None:
    for handler in (API_HANDLER, DRAINER_HANDLER, GUARD_HANDLER):
        assert function_by_handler(SAM, handler).metadata.get("BuildMethod") == "makefile"


@pytest.mark.parametrize("handler", [API_HANDLER, DRAINER_HANDLER, GUARD_HANDLER])
def test_each_bundle_imports_its_handler_with_only_its_own_requirements(handler: str) -> None:
    fn = function_by_handler(SAM, handler)
    bundle = makefile_bundles(MAKEFILE.read_text())[fn.logical_id]
    assert bundle_import_problem(handler, bundle) is None


def test_the_authorizer_bundle_holds_only_origin_guard_and_pyjwt() -> None:
    fn = function_by_handler(SAM, GUARD_HANDLER)
    bundle = makefile_bundles(MAKEFILE.read_text())[fn.logical_id]
    assert bundle.packages == ("origin_guard",)
    assert [Requirement(r).name.lower() for r in _requirements("authorizer")] == ["pyjwt"]


def _requirements(name: str) -> list[str]:
    lines = (REQUIREMENTS / f"{name}.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_bundle_requirements_agree_with_pyproject() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = {Requirement(r).name.lower(): r for r in pyproject["project"]["dependencies"]}
    for name in ("api", "drainer", "authorizer"):
        for line in _requirements(name):
            req = Requirement(line)
            assert declared.get(req.name.lower()) == line, f"{name}.txt: {line} vs pyproject"
    # The API needs everything the project declares, except what the Lambda runtime provides.
    api = {Requirement(r).name.lower() for r in _requirements("api")}
    assert set(declared) - api == {"boto3"}


def test_api_routes_reach_the_app_with_the_right_auth(cfn: dict[str, Any]) -> None:
    pairs, hidden = fastapi_routes(API_HANDLER.rpartition(".")[0])
    assert any(path.startswith("/admin/") for _, path in pairs)
    routes = http_api_routes(cfn, "WaitingRoomApi")
    assert app_route_problems(pairs, routes, hidden) == []


# ------------------------------------------------------------------ resources
def test_table_equals_waitingroom_table() -> None:
    props = SAM["Resources"]["Table"]["Properties"]
    assert props["KeySchema"] == table.KEY_SCHEMA
    by_name = sorted(props["AttributeDefinitions"], key=lambda a: a["AttributeName"])
    assert by_name == sorted(table.ATTRIBUTE_DEFINITIONS, key=lambda a: a["AttributeName"])
    assert props["BillingMode"] == table.BILLING_MODE
    assert props["TimeToLiveSpecification"] == {
        "AttributeName": table.TTL_ATTRIBUTE,
        "Enabled": True,
    }
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["DeletionProtectionEnabled"] == {"Ref": "DeletionProtection"}


def test_drainer_runs_alone_every_minute_for_under_its_timeout(cfn: dict[str, Any]) -> None:
    drainer = function_by_handler(SAM, DRAINER_HANDLER)
    assert drainer.props["ReservedConcurrentExecutions"] == 1
    assert 60 < drainer.props["Timeout"] <= 90
    rules = resources_of(cfn, "AWS::Events::Rule").values()
    schedules = [
        r["Properties"]["ScheduleExpression"]
        for r in rules
        if references(r["Properties"]["Targets"], drainer.logical_id)
    ]
    assert schedules == ["rate(1 minute)"]


def test_functions_get_the_settings_they_read() -> None:
    api = function_by_handler(SAM, API_HANDLER).props["Environment"]["Variables"]
    assert api["WAITINGROOM_TABLE"] == {"Ref": "Table"}
    assert api["WAITINGROOM_TICKET_SECRET_ID"] == {"Ref": "TicketSecret"}
    assert api["WAITINGROOM_ADMIN_AUTH"] == "iam"
    assert api["WAITINGROOM_COOKIE_SECURE"] == "true"
    drainer = function_by_handler(SAM, DRAINER_HANDLER).props["Environment"]["Variables"]
    assert drainer["WAITINGROOM_TABLE"] == {"Ref": "Table"}
    assert drainer["WAITINGROOM_SIGNING_KEYS_SECRET_ID"] == {"Ref": "SigningKeySecret"}
    guard = function_by_handler(SAM, GUARD_HANDLER).props["Environment"]["Variables"]
    assert guard["GUARD_JWKS_URL"]["Fn::Sub"].endswith("/.well-known/jwks.json")
    assert guard["GUARD_COOKIE_NAME"] == "waitingroom_token"
    assert guard["GUARD_ISSUER"] == api["WAITINGROOM_ISSUER"] == {"Ref": "Issuer"}


def test_secrets_start_as_the_code_expects() -> None:
    ticket = SAM["Resources"]["TicketSecret"]["Properties"]
    assert ticket["GenerateSecretString"]["PasswordLength"] >= 32
    assert "SecretString" not in ticket
    assert SAM["Resources"]["SigningKeySecret"]["Properties"]["SecretString"] == "{}"


def test_least_privilege(cfn: dict[str, Any]) -> None:
    assert least_privilege_problems(cfn) == []


def test_origin_routes_all_go_through_the_guard(cfn: dict[str, Any]) -> None:
    routes = http_api_routes(cfn, "OriginApi")
    assert routes
    assert {r.auth for r in routes} == {"GuardAuthorizer"}
    schemes = cfn["Resources"]["OriginApi"]["Properties"]["Body"]["components"]["securitySchemes"]
    authorizer = schemes["GuardAuthorizer"]["x-amazon-apigateway-authorizer"]
    guard = function_by_handler(SAM, GUARD_HANDLER).logical_id
    assert references(authorizer["authorizerUri"], guard)
    assert authorizer["type"] == "request"
    assert authorizer["identitySource"] == ["$request.header.Cookie"]
    # The guard answers HTTP API v2 events with {"isAuthorized": ...}: simple responses.
    assert authorizer["authorizerPayloadFormatVersion"] == "2.0"
    assert authorizer["enableSimpleResponses"] is True
    # API Gateway may invoke the guard, for this API's authorizers only.
    permissions = [
        p["Properties"]
        for p in resources_of(cfn, "AWS::Lambda::Permission").values()
        if references(p["Properties"]["FunctionName"], guard)
    ]
    assert len(permissions) == 1
    assert permissions[0]["Principal"] == "apigateway.amazonaws.com"
    assert references(permissions[0]["SourceArn"], "OriginApi")
    assert "/authorizers/" in permissions[0]["SourceArn"]["Fn::Sub"]


def test_the_guard_answers_in_the_shape_the_origin_api_expects() -> None:
    from origin_guard.authorizer import deny, event_kind

    sample = ROOT / "tests" / "events" / "authorizer-http-api-v2-request.json"
    event = json.loads(sample.read_text())
    assert event_kind(event) == "http_v2"
    assert deny(event, "http_v2") == {"isAuthorized": False}  # a simple response


def test_authorizer_cache_is_shorter_than_a_token_life(cfn: dict[str, Any]) -> None:
    schemes = cfn["Resources"]["OriginApi"]["Properties"]["Body"]["components"]["securitySchemes"]
    ttl = schemes["GuardAuthorizer"]["x-amazon-apigateway-authorizer"]
    assert ttl["authorizerResultTtlInSeconds"] == {"Ref": "GuardCacheSeconds"}
    cache = SAM["Parameters"]["GuardCacheSeconds"]
    assert 0 < default("GuardCacheSeconds") <= default("DefaultSessionSeconds") // 10
    assert int(cache["MaxValue"]) < int(SAM["Parameters"]["DefaultSessionSeconds"]["MinValue"])


# Default* parameters whose range is tighter than the API's, and why.
NARROWED_ROOM_DEFAULTS = {
    "DefaultSessionSeconds": "stays well above GuardCacheSeconds (a cached allow outlives exp)",
}


def room_defaults(sam: dict[str, Any]) -> list[str]:
    return room_default_problems(sam, ROOM_FIELDS, ApiSettings.model_fields, NARROWED_ROOM_DEFAULTS)


def test_room_default_parameters_agree_with_the_room_settings() -> None:
    assert room_defaults(SAM) == []
    assert {k for k in SAM["Parameters"] if k.startswith("Default")} == {
        f"Default{n.removeprefix('default_').title().replace('_', '')}"
        for n in ApiSettings.model_fields
        if n.startswith("default_")
    }


def test_nothing_is_always_on(cfn: dict[str, Any]) -> None:
    always_on = ("AWS::EC2::", "AWS::ElastiCache::", "AWS::RDS::", "AWS::ECS::", "AWS::MemoryDB::")
    kinds = {r["Type"] for r in cfn["Resources"].values()}
    assert not [k for k in kinds if k.startswith(always_on)]
    for fn in resources_of(cfn, "AWS::Lambda::Function").values():
        assert "VpcConfig" not in fn["Properties"]
    assert not resources_of(cfn, "AWS::Lambda::Version", "AWS::Lambda::Alias")


def test_outputs_name_the_urls() -> None:
    outputs = SAM["Outputs"]
    for name in ("ApiUrl", "JwksUrl", "OriginUrl"):
        assert outputs[name]["Value"]["Fn::Sub"].startswith("https://")


# ------------------------------------------------------------------ broken on purpose
def test_a_misspelled_handler_is_caught(tmp_path: Path) -> None:
    path = broken_copy(
        tmp_path, f"Handler: {DRAINER_HANDLER}", "Handler: waitingroom.drainr.handler"
    )
    problems = handler_problems(cfn_yaml.load(path), MAKEFILE.read_text())
    assert len(problems) == 1
    assert "waitingroom.drainr" in problems[0]


def test_a_handler_missing_from_its_bundle_is_caught(tmp_path: Path) -> None:
    path = broken_copy(
        tmp_path, f"Handler: {GUARD_HANDLER}", "Handler: waitingroom.drainer.handler"
    )
    problems = handler_problems(cfn_yaml.load(path), MAKEFILE.read_text())
    assert len(problems) == 1
    assert "does not copy waitingroom" in problems[0]


def test_a_dangling_ref_is_caught_by_cfn_lint(tmp_path: Path, translate_file: Translate) -> None:
    path = broken_copy(
        tmp_path,
        "WAITINGROOM_TICKET_SECRET_ID: !Ref TicketSecret",
        "WAITINGROOM_TICKET_SECRET_ID: !Ref TicketSecrett",
    )
    translated = tmp_path / "translated.json"
    translated.write_text(json.dumps(translate_file(path)))
    done = cfn_lint(translated)
    assert done.returncode != 0
    assert "TicketSecrett" in done.stdout


def test_granting_the_api_the_signing_keys_is_caught(
    tmp_path: Path, translate_file: Translate
) -> None:
    path = broken_copy(
        tmp_path,
        "                Action: secretsmanager:GetSecretValue\n"
        "                Resource: !Ref TicketSecret\n",
        "                Action: secretsmanager:GetSecretValue\n"
        "                Resource: [!Ref TicketSecret, !Ref SigningKeySecret]\n",
    )
    problems = least_privilege_problems(translate_file(path))
    assert problems == ["ApiRole (AWS::IAM::Role) references SigningKeySecret"]


def test_a_table_wide_wildcard_is_caught(tmp_path: Path, translate_file: Translate) -> None:
    path = broken_copy(tmp_path, "- dynamodb:BatchWriteItem", "- dynamodb:*")
    problems = least_privilege_problems(translate_file(path))
    assert len(problems) == 1
    assert "wildcard action" in problems[0]


def test_a_bundle_without_a_requirement_its_handler_needs_is_caught() -> None:
    api = function_by_handler(SAM, API_HANDLER)
    bundle = makefile_bundles(MAKEFILE.read_text())[api.logical_id]
    without_web = type(bundle)("drainer", bundle.packages)
    problem = bundle_import_problem(API_HANDLER, without_web)
    assert problem is not None
    assert "is not in this bundle" in problem


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("MaxValue: 256", "MaxValue: 512", "DefaultShards: [1, 512] should be [1, 256]"),
        ("MinValue: 5\n", "MinValue: 1\n", "DefaultPickupSeconds: [1, 3600] should be [5, 3600]"),
        ("MinValue: 300", "MinValue: 5", "DefaultSessionSeconds: [5, 21600] is not within"),
        ("Rate cap on admissions per", "Cap on admissions per", "should start with 'rate cap"),
        (
            "WAITINGROOM_DEFAULT_SHARDS: !Ref DefaultShards\n          WAITINGROOM_CLIENT_KEY",
            "WAITINGROOM_CLIENT_KEY",
            "WAITINGROOM_DEFAULT_SHARDS is not !Ref DefaultShards",
        ),
    ],
)
def test_a_room_default_that_drifts_from_the_room_settings_is_caught(
    tmp_path: Path, old: str, new: str, problem: str
) -> None:
    problems = room_defaults(cfn_yaml.load(broken_copy(tmp_path, old, new)))
    assert len(problems) == 1 and problem in problems[0], problems
