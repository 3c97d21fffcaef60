"""infra/template.yaml: lint clean, translatable, wired to real code, least privilege.

The linters and the SAM translator live in the tools virtualenv (.venv-tools, made by
infra/check.sh); these tests call them as subprocesses and fail, never skip, when it is missing.
The last tests break a copy of the template on purpose and show that the checks notice.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from tests.infra import cfn_yaml
from tests.infra.checks import (
    ADMIN_HANDLER,
    ALL_VIEWER_EXCEPT_HOST,
    API_HANDLER,
    CACHING_DISABLED,
    DRAINER_HANDLER,
    GUARD_HANDLER,
    MAKEFILE,
    REQUIREMENTS,
    ROOT,
    TEMPLATE,
    app_route_problems,
    behaviour_for,
    behaviours,
    bundle_import_problem,
    cache_policy,
    cfn_lint,
    cloudfront_function_code,
    distribution,
    edge_problems,
    fastapi_routes,
    function_by_handler,
    functions,
    handler_problems,
    http_api_routes,
    least_privilege_problems,
    load_template,
    makefile_bundles,
    origin_kinds,
    references,
    resources_of,
    room_default_problems,
    run_cloudfront_function,
)
from tests.infra.conftest import Translate
from waitingroom import table
from waitingroom.rooms import ROOM_FIELDS
from waitingroom.settings import ApiSettings

SAM = load_template()
FUNCTION_IDS = [f.logical_id for f in functions(SAM)]
API_ID = function_by_handler(SAM, API_HANDLER).logical_id


def app_routes() -> list[tuple[str, str]]:
    pairs, hidden = fastapi_routes(API_HANDLER.rpartition(".")[0])
    return [(m, path) for m, path in pairs if path not in hidden and m != "HEAD"]


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


def test_the_four_entry_points_are_the_ones_the_code_defines() -> None:
    for handler in (API_HANDLER, ADMIN_HANDLER, DRAINER_HANDLER, GUARD_HANDLER):
        assert function_by_handler(SAM, handler).metadata.get("BuildMethod") == "makefile"


def test_the_operators_function_creates_rooms_with_the_same_defaults() -> None:
    def defaults(handler: str) -> dict[str, Any]:
        env = function_by_handler(SAM, handler).props["Environment"]["Variables"]
        return {k: v for k, v in env.items() if k.startswith("WAITINGROOM_DEFAULT_")}

    assert defaults(ADMIN_HANDLER) == defaults(API_HANDLER) != {}


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


def _locked(name: str) -> dict[str, tuple[str, int]]:
    """requirements/<name>.lock: package -> (version, number of hashes)."""
    text = (REQUIREMENTS / f"{name}.lock").read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
    found = {}
    for block in blocks:
        m = re.match(r"([A-Za-z0-9_.-]+)==(\S+)", block)
        if m:
            found[m[1].lower().replace("_", "-")] = (m[2], block.count("--hash=sha256:"))
    return found


@pytest.mark.parametrize("name", ["api", "drainer", "authorizer"])
def test_each_bundle_is_locked_with_hashes_and_the_lock_satisfies_its_requirements(
    name: str,
) -> None:
    locked = _locked(name)
    assert locked and all(hashes for _, hashes in locked.values()), "every pin has its hashes"
    for line in _requirements(name):
        req = Requirement(line)
        version, _ = locked[req.name.lower().replace("_", "-")]
        assert req.specifier.contains(version), f"{name}.lock pins {req.name} {version}: {req}"
    build = makefile_bundles(MAKEFILE.read_text())
    assert "--require-hashes" in MAKEFILE.read_text()
    assert any(b.requirements == name for b in build.values())


def test_the_bundles_are_precompiled_for_the_runtime_they_run_on() -> None:
    makefile = MAKEFILE.read_text()
    [version] = re.findall(r"^LAMBDA_PYTHON \?= (\S+)$", makefile, re.M)
    assert {f.props["Runtime"] for f in functions(SAM)} == {f"python{version}"}
    for logical_id in makefile_bundles(makefile):
        target = re.search(rf"^build-{logical_id}:.*\n((?:\t.*\n)+)", makefile, re.M)
        assert target and "$(call compile)" in target[1], logical_id
    assert "--invalidation-mode unchecked-hash" in makefile
    # the compile step refuses a build Python other than the runtime's
    assert 'sys.exit(0 if v == "$(LAMBDA_PYTHON)"' in makefile


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


def test_the_table_can_be_pre_warmed_for_a_launch_and_is_not_by_default() -> None:
    warm = SAM["Resources"]["Table"]["Properties"]["WarmThroughput"]["Fn::If"]
    assert warm[0] == "WarmTable" and warm[2] == {"Ref": "AWS::NoValue"}
    assert warm[1] == {
        "WriteUnitsPerSecond": {"Ref": "TableWarmWriteUnits"},
        "ReadUnitsPerSecond": {"Ref": "TableWarmReadUnits"},
    }
    params = SAM["Parameters"]
    assert params["TableWarmWriteUnits"]["Default"] == 0
    # the scale model's figure for 20,000 joins/s fits the parameter (BENCHMARKS.md)
    assert params["TableWarmWriteUnits"]["MaxValue"] >= 36_000


def test_drainer_runs_every_minute_overlapping_the_next_run_for_under_its_timeout(
    cfn: dict[str, Any],
) -> None:
    """Two runs at a time: one ticks, the other stands by to take over a dead one's rooms."""
    drainer = function_by_handler(SAM, DRAINER_HANDLER)
    # nothing reserved by default: a reservation fails a new account's stack (quota 10)
    reserved = drainer.props["ReservedConcurrentExecutions"]
    assert reserved["Fn::If"][0] == "ReserveDrainer"
    assert SAM["Parameters"]["DrainerReservedConcurrency"]["Default"] == 0
    run_seconds = float(drainer.props["Environment"]["Variables"]["WAITINGROOM_RUN_SECONDS"])
    assert 60 < run_seconds <= 120  # outlasts the schedule's period; never three at once
    assert run_seconds + 10 <= drainer.props["Timeout"] <= 150
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
    # the API's alias `live` holds provisioned concurrency only when asked (billed while idle)
    for alias in resources_of(cfn, "AWS::Lambda::Alias").values():
        config = alias["Properties"]["ProvisionedConcurrencyConfig"]
        assert config["Fn::If"][0] == "ProvisionApi"
        assert config["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    assert SAM["Parameters"]["ApiProvisionedConcurrency"]["Default"] == 0


def test_outputs_name_the_urls() -> None:
    outputs = SAM["Outputs"]
    for name in ("ApiUrl", "JwksUrl", "OriginUrl"):
        assert outputs[name]["Value"]["Fn::Sub"].startswith("https://")


# ------------------------------------------------------------------ the edge (CloudFront)
def test_one_distribution_fronts_the_api_and_the_example_origin() -> None:
    kinds = origin_kinds(SAM, API_ID)
    assert sorted(kinds.values()) == ["example", "function_url", "http_api"]
    found = behaviours(SAM)
    assert kinds[found[-1].origin] == "example"  # everything not under /rooms or /.well-known
    config = distribution(SAM)
    assert config["HttpVersion"] == "http2and3"
    assert config["Enabled"] is True


def test_every_app_route_gets_what_it_needs_at_the_edge_and_admin_is_not_reachable() -> None:
    assert any(path.startswith("/admin/") for _, path in app_routes())
    assert edge_problems(SAM, app_routes()) == []


def test_the_room_state_is_one_copy_for_everybody_at_most_two_seconds_old() -> None:
    state = behaviour_for("/rooms/demo/state", behaviours(SAM))
    policy = cache_policy(SAM, state)
    assert policy is not None
    assert int(policy["MaxTTL"]) <= 2
    key = policy["ParametersInCacheKeyAndForwardedToOrigin"]
    assert key["QueryStringsConfig"] == {"QueryStringBehavior": "none"}  # ?v=... is one copy
    assert key["CookiesConfig"] == {"CookieBehavior": "none"}
    assert key["HeadersConfig"] == {"HeaderBehavior": "none"}  # Authorization is not in it
    assert "OriginRequestPolicyId" not in state.props  # nothing of the visitor reaches the API


@pytest.mark.parametrize(
    "path", ["/rooms/demo/slots/1764505230", "/rooms/_assets/waiting.0123456789abcdef.js"]
)
def test_settled_slots_and_page_assets_may_stay_a_year(path: str) -> None:
    policy = cache_policy(SAM, behaviour_for(path, behaviours(SAM)))
    assert policy is not None
    assert int(policy["MaxTTL"]) >= 31_536_000
    assert int(policy["DefaultTTL"]) == 0  # only as long as the API says: a slot's 404, 1 s


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/rooms/demo/join"),
        ("GET", "/rooms/demo/status"),
        ("GET", "/rooms/demo/challenge"),
        ("POST", "/rooms/demo/complete"),
        ("GET", "/"),  # the example origin: the token cookie must reach it
    ],
)
def test_visitor_routes_are_never_cached_and_forward_cookies_and_authorization(
    method: str, path: str
) -> None:
    b = behaviour_for(path, behaviours(SAM))
    assert b.props["CachePolicyId"] == CACHING_DISABLED
    # all viewer headers (Authorization, Idempotency-Key, X-Challenge*), cookies, query strings;
    # not Host, which API Gateway and function URLs refuse when it is not their own
    assert b.props["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST
    assert method in b.props["AllowedMethods"]


def test_bearer_routes_avoid_the_origin_that_overwrites_authorization() -> None:
    kinds = origin_kinds(SAM, API_ID)
    for path in ("/rooms/demo/status", "/rooms/demo/complete"):
        assert kinds[behaviour_for(path, behaviours(SAM)).origin] == "http_api"
    assert kinds[behaviour_for("/rooms/demo/join", behaviours(SAM)).origin] == "function_url"


def test_errors_are_cached_no_longer_than_their_own_cache_control() -> None:
    errors = distribution(SAM)["CustomErrorResponses"]
    assert {e["ErrorCode"] for e in errors} >= {400, 403, 404, 500, 502, 503, 504}
    assert {e["ErrorCachingMinTTL"] for e in errors} == {0}
    assert not [e for e in errors if "ResponsePagePath" in e]


def test_only_this_distribution_may_call_the_api_function_url(cfn: dict[str, Any]) -> None:
    urls = resources_of(cfn, "AWS::Lambda::Url")
    assert [u["Properties"]["AuthType"] for u in urls.values()] == ["AWS_IAM"]
    url = next(iter(urls.values()))["Properties"]
    # on the alias every deploy moves (AutoPublishAlias), which the permissions below name
    assert url["TargetFunctionArn"] == {"Ref": f"{API_ID}Aliaslive"}
    oac_origins = [o for o in distribution(cfn)["Origins"] if "OriginAccessControlId" in o]
    assert [o["Id"] for o in oac_origins] == [
        k for k, v in origin_kinds(cfn, API_ID).items() if v == "function_url"
    ]
    oac_id = oac_origins[0]["OriginAccessControlId"]["Fn::GetAtt"][0]
    oac = cfn["Resources"][oac_id]["Properties"]["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"]) == ("lambda", "always")
    granted = [
        p["Properties"]
        for p in resources_of(cfn, "AWS::Lambda::Permission").values()
        if references(p["Properties"]["FunctionName"], f"{API_ID}Aliaslive")
        and p["Properties"]["Principal"] != "apigateway.amazonaws.com"
    ]
    assert sorted(p["Action"] for p in granted) == [
        "lambda:InvokeFunction",
        "lambda:InvokeFunctionUrl",
    ]
    for p in granted:
        assert p["Principal"] == "cloudfront.amazonaws.com"
        assert references(p["SourceArn"], "Distribution")
        assert ":distribution/${Distribution}" in p["SourceArn"]["Fn::Sub"]


def test_waf_and_custom_domain_are_optional() -> None:
    params = SAM["Parameters"]
    assert params["WebACLId"]["Default"] == params["DomainName"]["Default"] == ""
    assert params["CertificateArn"]["Default"] == ""
    config = distribution(SAM)
    no_acl = {"Ref": "AWS::NoValue"}
    assert config["WebACLId"] == {"Fn::If": ["HasWebACL", {"Ref": "WebACLId"}, no_acl]}
    assert config["Aliases"]["Fn::If"][0] == "HasDomain"
    own, default_cert = config["ViewerCertificate"]["Fn::If"][1:]
    assert own["AcmCertificateArn"] == {"Ref": "CertificateArn"}
    assert own["SslSupportMethod"] == "sni-only"
    assert default_cert == {"CloudFrontDefaultCertificate": True}
    url = SAM["Outputs"]["WaitingPageUrl"]["Value"]["Fn::Sub"]
    assert url[0] == "https://${Host}/rooms/${Room}"
    assert url[1]["Host"]["Fn::If"][0] == "HasDomain"


JOIN_HASH = cloudfront_function_code(SAM, "JoinBodyHashFunction")
ORIGIN_GATE = cloudfront_function_code(SAM, "OriginGateFunction", Room="demo")


def viewer_request(
    method: str, uri: str, headers: dict[str, str], cookies: dict[str, str] | None = None
) -> dict[str, Any]:
    """A CloudFront Functions viewer-request event (runtime 2.0)."""
    return {
        "version": "1.0",
        "context": {"eventType": "viewer-request"},
        "viewer": {"ip": "198.51.100.7"},
        "request": {
            "method": method,
            "uri": uri,
            "querystring": {},
            "headers": {k: {"value": v} for k, v in headers.items()},
            "cookies": {k: {"value": v} for k, v in (cookies or {}).items()},
        },
    }


def test_a_join_without_a_body_hash_gets_the_empty_bodys() -> None:
    out = run_cloudfront_function(JOIN_HASH, viewer_request("POST", "/rooms/demo/join", {}))
    assert out["headers"]["x-amz-content-sha256"]["value"] == hashlib.sha256(b"").hexdigest()
    given = hashlib.sha256(b"{}").hexdigest()
    event = viewer_request("POST", "/rooms/demo/join", {"x-amz-content-sha256": given})
    assert run_cloudfront_function(JOIN_HASH, event)["headers"]["x-amz-content-sha256"] == {
        "value": given
    }


def test_a_page_load_without_a_token_is_sent_to_the_waiting_page() -> None:
    page = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    out = run_cloudfront_function(ORIGIN_GATE, viewer_request("GET", "/", page))
    assert out["statusCode"] == 302
    assert out["headers"]["location"]["value"] == "/rooms/demo"
    with_token = viewer_request("GET", "/", page, {"waitingroom_token": "eyJ..."})
    assert run_cloudfront_function(ORIGIN_GATE, with_token)["uri"] == "/"  # on to the guard
    api_call = viewer_request("GET", "/api/hello", {"accept": "application/json"})
    assert run_cloudfront_function(ORIGIN_GATE, api_call)["uri"] == "/api/hello"  # guard's 401


def test_the_api_answers_a_function_url_event_from_the_distribution() -> None:
    from mangum import Mangum

    from devtools.events import load_event
    from waitingroom.api import create_app
    from waitingroom.page import render_waiting_page

    handler = Mangum(create_app(None, None), lifespan="off")  # as waitingroom.bootstrap does
    context: Any = None  # Lambda's context object; the app does not read it
    asset = re.findall(r"_assets/(waiting\.[0-9a-f]+\.js)", render_waiting_page("demo"))[0]
    event = load_event("lambda-url-via-cloudfront")
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/rooms/_assets/{asset}"
    event["requestContext"]["http"]["method"] = "GET"
    out = handler(event, context)
    assert out["statusCode"] == 200
    assert out["headers"]["cache-control"] == "public, max-age=31536000, immutable"
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/rooms/_assets/nope.js"
    missing = handler(event, context)
    assert missing["statusCode"] == 404
    assert json.loads(missing["body"])["error"]


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
        "WAITINGROOM_TICKET_SECRET_ID: !Ref TicketSecret\n          WAITINGROOM_ADMIN_AUTH: iam\n"
        "          WAITINGROOM_COOKIE_SECURE",
        "WAITINGROOM_TICKET_SECRET_ID: !Ref TicketSecrett\n          WAITINGROOM_ADMIN_AUTH: iam\n"
        "          WAITINGROOM_COOKIE_SECURE",
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
        '                      - "ROOM#*#UNHELD"\n'
        "              - Sid: TicketSecret\n"
        "                Effect: Allow\n"
        "                Action: secretsmanager:GetSecretValue\n"
        "                Resource: !Ref TicketSecret\n",
        '                      - "ROOM#*#UNHELD"\n'
        "              - Sid: TicketSecret\n"
        "                Effect: Allow\n"
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


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("MaxTTL: 2\n", "MaxTTL: 60\n", "lets the state get older than 2 s"),
        # a state pattern that no longer matches: the state falls to the page's behaviour
        ("PathPattern: /rooms/*/state", "PathPattern: /rooms/*/state/*", "MaxTTL 31536000"),
        # a catch-all in front of the page: the operators' routes reach the API
        ("- PathPattern: /rooms/*\n", "- PathPattern: /*\n", "reaches the API through"),
        (
            "- PathPattern: /rooms/*/status\n            TargetOriginId: api-gateway",
            "- PathPattern: /rooms/*/status\n            TargetOriginId: api-function-url",
            "overwrites Authorization",
        ),
        (
            "HeadersConfig: { HeaderBehavior: none }\n\n  # Public",
            "HeadersConfig: { HeaderBehavior: whitelist, Headers: [Authorization] }\n\n  # Public",
            "its cache key holds visitor data: headers whitelist",
        ),
    ],
)
def test_an_edge_that_breaks_the_contract_is_caught(
    tmp_path: Path, old: str, new: str, problem: str
) -> None:
    problems = edge_problems(cfn_yaml.load(broken_copy(tmp_path, old, new)), app_routes())
    assert problems and all(problem in p for p in problems), problems


def test_every_function_logs_json_without_the_platform_lines(cfn: dict[str, Any]) -> None:
    """No START/END/REPORT line per invocation (SystemLogLevel WARN): at a million visitors
    they were most of the log bill."""
    for name, fn in resources_of(cfn, "AWS::Lambda::Function").items():
        logging = fn["Properties"]["LoggingConfig"]
        assert logging["LogFormat"] == "JSON", name
        assert logging["SystemLogLevel"] == "WARN", name
        assert logging["ApplicationLogLevel"] in ("INFO", "WARN"), name


def test_gradual_deployment_is_optional_and_its_role_moves_only_this_alias(
    cfn: dict[str, Any],
) -> None:
    assert SAM["Parameters"]["ApiDeploymentType"]["Default"] == "AllAtOnce"
    [group] = resources_of(cfn, "AWS::CodeDeploy::DeploymentGroup").values()
    props = group["Properties"]
    # the rollback alarm exists (and is wired) only for a gradual deployment
    assert props["AlarmConfiguration"]["Fn::If"][0] == "GradualApi"
    assert cfn["Resources"]["ApiDeployErrorsAlarm"]["Condition"] == "GradualApi"
    role = props["ServiceRoleArn"]["Fn::GetAtt"][0]
    assert not cfn["Resources"][role]["Properties"].get("ManagedPolicyArns")
    resources = [
        s["Resource"]
        for s in cfn["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    ]
    assert resources[0]["Fn::Sub"].endswith(":function:${ApiFunction}:*")
