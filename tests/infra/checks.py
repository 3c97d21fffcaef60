"""Checks over infra/template.yaml and its CloudFormation translation.

Each check returns a list of problems (empty when fine), so a test can run it on the real template
and on a copy broken on purpose, and show that the check notices.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

from tests.infra import cfn_yaml
from waitingroom.rooms import RoomField

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
TEMPLATE = INFRA / "template.yaml"
MAKEFILE = INFRA / "Makefile"
REQUIREMENTS = INFRA / "requirements"

API_HANDLER = "waitingroom.handler.handler"
DRAINER_HANDLER = "waitingroom.drainer.handler"
GUARD_HANDLER = "origin_guard.authorizer.handler"
# The repository's own top-level packages: a bundle sees only those its Makefile target copies.
FIRST_PARTY = ("waitingroom", "origin_guard", "devtools", "bench", "loadtests", "tests")
# What the Lambda Python runtime provides, per bundle that may rely on it (see requirements/*.txt).
RUNTIME_PROVIDED = {"api": ("boto3",), "drainer": ("boto3",), "authorizer": ()}


# ------------------------------------------------------------------ tools (the tools virtualenv)
def tools_dir() -> Path:
    return Path(os.environ.get("WAITINGROOM_TOOLS_VENV", ROOT / ".venv-tools"))


def missing_tools() -> str | None:
    for tool in ("python", "cfn-lint"):
        if not (tools_dir() / "bin" / tool).exists():
            return (
                f"{tools_dir() / 'bin' / tool} is missing: run infra/check.sh once to create the "
                "tools virtualenv (or point WAITINGROOM_TOOLS_VENV at one with aws-sam-translator "
                "and cfn-lint)"
            )
    return None


def translate(template: Path) -> subprocess.CompletedProcess[str]:
    """Run infra/translate.py in the tools virtualenv; stdout is the CloudFormation JSON."""
    command = [str(tools_dir() / "bin" / "python"), str(INFRA / "translate.py"), str(template)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def cfn_lint(template: Path) -> subprocess.CompletedProcess[str]:
    command = [str(tools_dir() / "bin" / "cfn-lint"), "--", str(template)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


# ------------------------------------------------------------------ template walking
def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return cfn_yaml.load(path)


@dataclass(frozen=True)
class Function:
    logical_id: str
    props: dict[str, Any]
    metadata: dict[str, Any]

    @property
    def handler(self) -> str:
        return str(self.props.get("Handler", ""))


def functions(sam: dict[str, Any]) -> list[Function]:
    """SAM functions with the Globals section applied."""
    defaults = sam.get("Globals", {}).get("Function", {})
    return [
        Function(name, {**defaults, **res.get("Properties", {})}, res.get("Metadata", {}))
        for name, res in sam["Resources"].items()
        if res.get("Type") == "AWS::Serverless::Function"
    ]


def function_by_handler(sam: dict[str, Any], handler: str) -> Function:
    found = [f for f in functions(sam) if f.handler == handler]
    assert len(found) == 1, f"expected one function with Handler {handler}, found {found}"
    return found[0]


def resources_of(cfn: dict[str, Any], *types: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in cfn["Resources"].items() if v.get("Type") in types}


def references(node: Any, name: str) -> bool:
    """Does this fragment point at resource `name` (Ref, GetAtt or ${name} in a Sub)?"""
    if isinstance(node, dict):
        if node.get("Ref") == name:
            return True
        att = node.get("Fn::GetAtt")
        if isinstance(att, list) and att and att[0] == name:
            return True
        if isinstance(att, str) and att.split(".")[0] == name:
            return True
        sub = node.get("Fn::Sub")
        text = sub[0] if isinstance(sub, list) and sub else sub
        if isinstance(text, str) and re.search(r"\$\{" + re.escape(name) + r"[.}]", text):
            return True
        return any(references(v, name) for v in node.values())
    if isinstance(node, list):
        return any(references(v, name) for v in node)
    return False


def role_of(cfn_function: dict[str, Any]) -> str | None:
    role = cfn_function.get("Properties", {}).get("Role")
    if isinstance(role, dict) and isinstance(role.get("Fn::GetAtt"), list):
        return str(role["Fn::GetAtt"][0])
    return None


def statements(cfn: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM policy statement in the template, with the logical id that holds it."""
    for name, res in cfn["Resources"].items():
        props = res.get("Properties", {})
        docs: list[Any] = []
        if res.get("Type") == "AWS::IAM::Role":
            docs = [p.get("PolicyDocument", {}) for p in props.get("Policies", [])]
        elif res.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            docs = [props.get("PolicyDocument", {})]
        for doc in docs:
            found = doc.get("Statement", [])
            for statement in found if isinstance(found, list) else [found]:
                yield name, statement


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ------------------------------------------------------------------ handlers and bundles
@dataclass(frozen=True)
class Bundle:
    requirements: str
    packages: tuple[str, ...]
    # modules of those packages left out (infra/Makefile's NOT_RUNTIME), e.g. "waitingroom.cli"
    left_out: tuple[str, ...] = ()


def makefile_bundles(text: str) -> dict[str, Bundle]:
    """infra/Makefile's bundles: `build-<LogicalId>: copy-<LogicalId>` with its
    `$(call requirements,req)` line, `copy-<LogicalId>:` with its `$(call copy,pkgs)` line."""
    text = text.replace("\r", "")
    build = re.compile(
        r"^build-(\w+):[ \t]*copy-\1[ \t]*\n\t\$\(call requirements,([\w-]+)\)", re.M
    )
    copy = re.compile(r"^copy-(\w+):[^\n]*\n\t\$\(call copy,([^)]*)\)", re.M)
    not_runtime = re.search(r"^NOT_RUNTIME :?= *(.*)$", text, re.M)
    left_out = tuple(
        path.removesuffix(".py").replace("/", ".")
        for path in (not_runtime[1].split() if not_runtime else [])
    )
    packages = {m[1]: tuple(m[2].split()) for m in copy.finditer(text)}
    return {
        m[1]: Bundle(
            m[2],
            packages[m[1]],
            tuple(x for x in left_out if x.partition(".")[0] in packages[m[1]]),
        )
        for m in build.finditer(text)
        if m[1] in packages
    }


def copy_bundle(logical_id: str, artifacts_dir: Path) -> subprocess.CompletedProcess[str]:
    """`make -f infra/Makefile copy-<LogicalId>`: the bundle's own packages, no requirements."""
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-f",
            str(MAKEFILE),
            f"copy-{logical_id}",
            f"ARTIFACTS_DIR={artifacts_dir}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _takes_event_and_context(obj: Any) -> bool:
    try:
        inspect.signature(obj).bind({}, None)
    except (TypeError, ValueError):
        return False
    return True


def _load_from_dir(code_dir: Path, module: str) -> Any:
    path = code_dir.joinpath(*module.split(".")).with_suffix(".py")
    if not path.is_file():
        raise ModuleNotFoundError(f"{path} does not exist")
    spec = importlib.util.spec_from_file_location(f"_infra_check_{module}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def resolve_handler(fn: Function, bundles: dict[str, Bundle], infra: Path = INFRA) -> Any:
    """Import a function's handler as Lambda would find it in its bundle; raise if it cannot."""
    module, _, attribute = fn.handler.rpartition(".")
    if not module:
        raise ValueError(f"Handler {fn.handler!r} is not in the form module.function")
    if fn.metadata.get("BuildMethod") == "makefile":
        bundle = bundles.get(fn.logical_id)
        if bundle is None:
            raise LookupError(f"infra/Makefile has no build-{fn.logical_id} target")
        if module.split(".")[0] not in bundle.packages:
            raise LookupError(f"build-{fn.logical_id} does not copy {module.split('.')[0]}")
        if not (REQUIREMENTS / f"{bundle.requirements}.txt").is_file():
            raise LookupError(f"requirements/{bundle.requirements}.txt is missing")
        mod = importlib.import_module(module)
    else:
        mod = _load_from_dir(infra / str(fn.props.get("CodeUri", ".")), module)
    obj = getattr(mod, attribute, None)
    if obj is None or not callable(obj):
        raise AttributeError(f"{module} has no function {attribute!r}")
    if not _takes_event_and_context(obj):
        raise TypeError(f"{fn.handler} cannot be called as handler(event, context)")
    return obj


def handler_problems(sam: dict[str, Any], makefile_text: str) -> list[str]:
    bundles = makefile_bundles(makefile_text)
    problems = []
    for fn in functions(sam):
        try:
            resolve_handler(fn, bundles)
        except Exception as exc:
            problems.append(f"{fn.logical_id}: Handler {fn.handler}: {type(exc).__name__}: {exc}")
    return problems


def _closure(names: list[str]) -> set[str]:
    """Installed distributions these requirements pull in (extras and markers honoured)."""
    seen: set[str] = set()
    todo = [Requirement(n) for n in names]
    while todo:
        req = todo.pop()
        key = f"{req.name.lower().replace('_', '-')}[{','.join(sorted(req.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = importlib.metadata.requires(req.name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in requires:
            dep = Requirement(line)
            envs = [{"extra": e} for e in [*req.extras, ""]]
            if dep.marker is None or any(dep.marker.evaluate(env) for env in envs):
                todo.append(dep)
    return {k.split("[")[0] for k in seen}


def requirement_lines(name: str) -> list[str]:
    lines = (REQUIREMENTS / f"{name}.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def blocked_modules(bundle: Bundle) -> set[str]:
    """Top-level modules installed here that this bundle would not contain in Lambda."""
    allowed = _closure(
        requirement_lines(bundle.requirements) + list(RUNTIME_PROVIDED.get(bundle.requirements, ()))
    )
    blocked = {p for p in FIRST_PARTY if p not in bundle.packages} | set(bundle.left_out)
    for module, dists in importlib.metadata.packages_distributions().items():
        if module in bundle.packages or module in sys.stdlib_module_names:
            continue
        if not any(d.lower().replace("_", "-") in allowed for d in dists):
            blocked.add(module)
    return blocked


_ISOLATED_IMPORT = """
import importlib, importlib.abc, inspect, sys
blocked = set(sys.argv[2].split(","))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if any(name == b or name.startswith(b + ".") for b in blocked):
            raise ModuleNotFoundError(f"{name} is not in this bundle", name=name)
        return None
sys.meta_path.insert(0, Block())
module, _, attribute = sys.argv[1].rpartition(".")
assert callable(getattr(importlib.import_module(module), attribute))
"""


def bundle_import_problem(handler: str, bundle: Bundle) -> str | None:
    """Import the handler in a fresh interpreter that can see only what the bundle ships."""
    blocked = ",".join(sorted(blocked_modules(bundle)))
    done = subprocess.run(
        [sys.executable, "-c", _ISOLATED_IMPORT, handler, blocked],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    if done.returncode == 0:
        return None
    last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
    return f"{handler} with only requirements/{bundle.requirements}.txt: {last}"


# ------------------------------------------------------------------ least privilege
def secret_problems(cfn: dict[str, Any], secret: str, owner_function: str) -> list[str]:
    """Only `owner_function` (its env) and its own role may reference `secret`."""
    problems = []
    lambdas = resources_of(cfn, "AWS::Lambda::Function")
    owner_role = role_of(lambdas[owner_function])
    if owner_role is None:
        return [f"{owner_function} has no role of its own (Role: !GetAtt <Role>.Arn)"]
    sharing = [n for n, f in lambdas.items() if n != owner_function and role_of(f) == owner_role]
    if sharing:
        problems.append(f"{owner_role} is shared with {sharing}: it may touch {secret}")
    for name, res in cfn["Resources"].items():
        if name in (secret, owner_function, owner_role):
            continue
        if references(res, secret):
            problems.append(f"{name} ({res.get('Type')}) references {secret}")
    return problems


def wildcard_problems(cfn: dict[str, Any], table: str) -> list[str]:
    problems = []
    for name, res in resources_of(cfn, "AWS::IAM::Role").items():
        if res.get("Properties", {}).get("ManagedPolicyArns"):
            problems.append(f"{name} attaches managed policies, which this check cannot see into")
    for name, statement in statements(cfn):
        if statement.get("Effect") != "Allow":
            continue
        actions = [str(a) for a in _as_list(statement.get("Action", []))]
        resources = _as_list(statement.get("Resource", []))
        if any(a == "*" or a.endswith(":*") for a in actions):
            problems.append(f"{name}: wildcard action in {actions}")
        if "*" in resources:
            problems.append(f"{name}: Resource '*' for {actions}")
        if any(a.startswith("dynamodb:") for a in actions) and not all(
            references(r, table) for r in resources
        ):
            problems.append(f"{name}: DynamoDB actions on something other than {table}")
    return problems


def least_privilege_problems(cfn: dict[str, Any]) -> list[str]:
    lambdas = resources_of(cfn, "AWS::Lambda::Function")
    by_handler = {f["Properties"].get("Handler"): n for n, f in lambdas.items()}
    return [
        *secret_problems(cfn, "SigningKeySecret", by_handler[DRAINER_HANDLER]),
        *secret_problems(cfn, "TicketSecret", by_handler[API_HANDLER]),
        *wildcard_problems(cfn, "Table"),
    ]


# ------------------------------------------------------------------ API Gateway routes
@dataclass(frozen=True)
class Route:
    method: str
    path: str
    auth: str  # "NONE", "AWS_IAM" or an authorizer name


def http_api_routes(cfn: dict[str, Any], api: str) -> list[Route]:
    """Routes of a translated AWS::Serverless::HttpApi (SAM writes them as an OpenAPI body)."""
    body = cfn["Resources"][api]["Properties"]["Body"]
    routes = []
    for path, operations in body.get("paths", {}).items():
        for verb, operation in operations.items():
            method = "ANY" if verb == "x-amazon-apigateway-any-method" else verb.upper()
            security = operation.get("security") or [{}]
            names = [name for requirement in security for name in requirement] or ["NONE"]
            routes.append(Route(method, path, names[0]))
    return routes


def _route_score(route_path: str, path: str) -> tuple[int, int] | None:
    """How well an API Gateway route path matches a request path (None: it does not)."""
    want, have = route_path.strip("/").split("/"), path.strip("/").split("/")
    literal = 0
    for i, part in enumerate(want):
        if part.startswith("{") and part.endswith("+}"):
            return (0, literal) if len(have) > i else None
        if i >= len(have):
            return None
        if part.startswith("{") and part.endswith("}"):
            continue
        if part != have[i]:
            return None
        literal += 1
    return (1, literal) if len(want) == len(have) else None


def route_for(routes: list[Route], method: str, path: str) -> Route | None:
    """The route API Gateway picks: exact before greedy, more literal segments first."""
    scored = [
        (score, r)
        for r in routes
        if r.method in ("ANY", method) and (score := _route_score(r.path, path)) is not None
    ]
    return max(scored, key=lambda pair: pair[0])[1] if scored else None


def app_route_problems(
    app_routes: list[tuple[str, str]], api_routes: list[Route], hidden: set[str]
) -> list[str]:
    """Each app route must be reachable; /admin ones only with SigV4, the others without auth."""
    problems = []
    for method, path in app_routes:
        if path in hidden or method == "HEAD":
            continue
        sample = re.sub(r"\{[^}]+\}", "x", path)
        route = route_for(api_routes, method, sample)
        admin = path == "/admin" or path.startswith("/admin/")
        if route is None:
            problems.append(f"{method} {path}: no API Gateway route reaches it")
        elif admin and route.auth != "AWS_IAM":
            problems.append(f"{method} {path}: reached by {route} without AWS_IAM")
        elif not admin and route.auth != "NONE":
            problems.append(f"{method} {path}: reached by {route}, which requires {route.auth}")
    for route in api_routes:
        if route.path.startswith("/admin") and route.auth != "AWS_IAM":
            problems.append(f"{route.method} {route.path}: an /admin route without AWS_IAM")
    return problems


def _flat_routes(routes: list[Any]) -> list[Any]:
    """The app's routes, with those of included routers (which FastAPI keeps as one entry
    per router, no prefix used here) listed one by one."""
    flat = []
    for route in routes:
        included = getattr(route, "original_router", None)
        flat.extend(_flat_routes(included.routes) if included is not None else [route])
    return flat


def fastapi_routes(handler_module: str) -> tuple[list[tuple[str, str]], set[str]]:
    """(method, path) of the app behind the API handler, and the docs paths it serves."""
    module = importlib.import_module(handler_module)
    factory: Callable[[], Any] | None = getattr(module, "create_app", None)
    app = getattr(module, "app", None) or (factory() if factory else None)
    if app is None and handler_module == "waitingroom.handler":
        from waitingroom.api import create_app

        app = create_app(None, None)  # its routes need neither a service nor settings
    assert app is not None, f"{handler_module} exposes neither `app` nor `create_app`"
    hidden = {p for p in (app.openapi_url, app.docs_url, app.redoc_url) if p}
    if app.docs_url:
        hidden.add(app.swagger_ui_oauth2_redirect_url or "")
        # the docs page's own files (Swagger UI served by the app: waitingroom/api/docs.py)
        hidden |= {
            r.path for r in _flat_routes(app.routes) if r.path.startswith(f"{app.docs_url}/")
        }
    pairs = [
        (method, route.path)
        for route in _flat_routes(app.routes)
        for method in sorted(getattr(route, "methods", None) or {"GET"})
    ]
    return pairs, hidden


# ------------------------------------------------------------------ room defaults
def room_default_problems(
    sam: dict[str, Any],
    fields: Sequence[RoomField[Any]],
    settings_fields: Iterable[str],
    narrowed: Mapping[str, str],
) -> list[str]:
    """The template's Default* parameters against the room settings they default
    (waitingroom/rooms.py): one per ApiSettings.default_* field, passed to the API function as
    WAITINGROOM_DEFAULT_<NAME>, with the setting's bounds (tighter only where `narrowed` says
    why), a default within them, and a Description that starts with the setting's."""
    problems: list[str] = []
    params = {k: v for k, v in sam.get("Parameters", {}).items() if k.startswith("Default")}
    by_param = {f.template_parameter: f for f in fields}
    wanted = {f"Default{_camel(n.removeprefix('default_'))}" for n in settings_fields}
    wanted = {n for n in wanted if n in by_param}
    for name in sorted(set(params) - set(by_param)):
        problems.append(f"parameter {name} defaults no room setting")
    for name in sorted(wanted - set(params)):
        problems.append(f"ApiSettings reads {name[len('Default') :]} but no parameter {name}")
    env = function_by_handler(sam, API_HANDLER).props.get("Environment", {}).get("Variables", {})
    for name, param in sorted(params.items()):
        spec = by_param.get(name)
        if spec is None:
            continue
        if name not in wanted:
            problems.append(f"{name}: ApiSettings has no default_{spec.name} to read it")
        var = f"WAITINGROOM_DEFAULT_{spec.env_suffix}"
        if env.get(var) != {"Ref": name}:
            problems.append(f"the API function's {var} is not !Ref {name}")
        ge, le = spec.ge, spec.le
        if spec.kind != "int" or ge is None or le is None or param.get("Type") != "Number":
            problems.append(f"{name}: only bounded integer settings have a Number parameter")
            continue
        if "MinValue" not in param or "MaxValue" not in param:
            problems.append(f"{name}: MinValue and MaxValue should be {ge} and {le}")
            continue
        low, high = int(param["MinValue"]), int(param["MaxValue"])
        if name in narrowed:
            if not ge <= low <= high <= le:
                problems.append(f"{name}: [{low}, {high}] is not within [{ge}, {le}]")
        elif (low, high) != (ge, le):
            problems.append(f"{name}: [{low}, {high}] should be [{ge}, {le}]")
        if "Default" not in param or not low <= int(param["Default"]) <= high:
            problems.append(f"{name}: Default {param.get('Default')} is not within its bounds")
        described = " ".join(str(param.get("Description", "")).split())
        if not described.startswith(spec.description[0].upper() + spec.description[1:]):
            problems.append(f"{name}: Description should start with {spec.description!r}")
    return problems


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def dumps(data: Any) -> str:
    return json.dumps(data, indent=1, sort_keys=True, default=str)


# ------------------------------------------------------------------ the CloudFront distribution
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # Managed-CachingDisabled
ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"  # Managed-AllViewerExceptHostHeader
YEAR = 31_536_000

# What the edge must do for each route of the app (CLIENTS.md §2, DESIGN.md "Public contract"):
#   state     one copy for everybody, at most 2 s old
#   public    one copy for everybody, as long as the API's Cache-Control says (up to a year)
#   visitor   never cached; cookies, headers and query strings reach the API
#   bearer    a visitor route whose caller may send Authorization: not through the signing origin
#   none      not served through the distribution
EDGE_ROUTES = {
    "/rooms/{room}/state": "state",
    "/rooms/{room}/slots/{slot}": "public",
    "/rooms/_assets/{name}": "public",
    "/rooms/{room}": "public",
    "/rooms/{room}/revoked": "public",
    "/.well-known/jwks.json": "public",
    "/rooms/{room}/join": "visitor",
    "/rooms/{room}/challenge": "visitor",
    "/rooms/{room}/status": "bearer",
    "/rooms/{room}/complete": "bearer",
    "/health": "none",
}
SAMPLE_VALUES = {"room": "demo", "slot": "1764505230", "name": "waiting.0123456789abcdef.js"}


@dataclass(frozen=True)
class Behaviour:
    pattern: str  # "*" for the default behaviour
    props: dict[str, Any]

    @property
    def origin(self) -> str:
        return str(self.props.get("TargetOriginId"))


def distribution(template: dict[str, Any]) -> dict[str, Any]:
    found = resources_of(template, "AWS::CloudFront::Distribution")
    assert len(found) == 1, f"expected one distribution, found {sorted(found)}"
    config: dict[str, Any] = next(iter(found.values()))["Properties"]["DistributionConfig"]
    return config


def behaviours(template: dict[str, Any]) -> list[Behaviour]:
    """The distribution's cache behaviours in the order CloudFront tries them."""
    config = distribution(template)
    ordered = [Behaviour(b["PathPattern"], b) for b in config.get("CacheBehaviors", [])]
    return [*ordered, Behaviour("*", config["DefaultCacheBehavior"])]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    # CloudFront: `*` is any run of characters, `/` included; `?` is one character.
    return re.compile(re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + r"\Z")


def behaviour_for(path: str, found: list[Behaviour]) -> Behaviour:
    return next(b for b in found if _pattern_regex(b.pattern).match(path))


def origin_kinds(template: dict[str, Any], api_function: str) -> dict[str, str]:
    """Origin id -> "function_url" (the API function's URL), "http_api" (WaitingRoomApi),
    "example" (OriginApi) or "other"."""
    kinds = {}
    for origin in distribution(template)["Origins"]:
        domain = origin["DomainName"]
        if references(domain, f"{api_function}Url"):
            kinds[origin["Id"]] = "function_url"
        elif references(domain, "WaitingRoomApi"):
            kinds[origin["Id"]] = "http_api"
        elif references(domain, "OriginApi"):
            kinds[origin["Id"]] = "example"
        else:
            kinds[origin["Id"]] = "other"
    return kinds


def cache_policy(template: dict[str, Any], behaviour: Behaviour) -> dict[str, Any] | None:
    """The behaviour's own cache policy config (None for a managed policy given by id)."""
    ref = behaviour.props.get("CachePolicyId")
    if isinstance(ref, dict) and "Ref" in ref:
        config: dict[str, Any] = template["Resources"][ref["Ref"]]["Properties"][
            "CachePolicyConfig"
        ]
        return config
    return None


def _key_problems(policy: dict[str, Any]) -> list[str]:
    key = policy.get("ParametersInCacheKeyAndForwardedToOrigin", {})
    found = [
        f"{name} {key.get(config, {}).get(field)}"
        for name, config, field in (
            ("query strings", "QueryStringsConfig", "QueryStringBehavior"),
            ("cookies", "CookiesConfig", "CookieBehavior"),
            ("headers", "HeadersConfig", "HeaderBehavior"),
        )
        if key.get(config, {}).get(field) != "none"
    ]
    return [f"its cache key holds visitor data: {', '.join(found)}"] if found else []


def _route_need_problems(
    template: dict[str, Any], behaviour: Behaviour, need: str, kind: str
) -> list[str]:
    problems: list[str] = []
    policy = cache_policy(template, behaviour)
    if need in ("state", "public"):
        if policy is None:
            return [f"cache policy {behaviour.props.get('CachePolicyId')} is not the stack's own"]
        problems += _key_problems(policy)
        if need == "state" and not int(policy["MaxTTL"]) <= 2:
            problems.append(f"MaxTTL {policy['MaxTTL']} lets the state get older than 2 s")
        if need == "public" and int(policy["MaxTTL"]) < YEAR:
            problems.append(f"MaxTTL {policy['MaxTTL']} cuts immutable documents short of a year")
        if need == "public" and int(policy["DefaultTTL"]) != 0:
            problems.append("DefaultTTL is not 0: an answer without Cache-Control would be cached")
    else:
        if behaviour.props.get("CachePolicyId") != CACHING_DISABLED:
            problems.append("is cached (CachePolicyId is not Managed-CachingDisabled)")
        if behaviour.props.get("OriginRequestPolicyId") != ALL_VIEWER_EXCEPT_HOST:
            problems.append("does not forward cookies, headers and query strings (all but Host)")
        if need == "bearer" and kind == "function_url":
            problems.append("goes through the origin access control: it overwrites Authorization")
    return problems


def edge_problems(template: dict[str, Any], app_routes: list[tuple[str, str]]) -> list[str]:
    """Each app route, sent through the distribution: to the API as EDGE_ROUTES says, or (the
    operators' routes and anything EDGE_ROUTES marks "none") never to the API."""
    api_function = function_by_handler(template, API_HANDLER).logical_id
    kinds = origin_kinds(template, api_function)
    found = behaviours(template)
    problems = []
    for b in found:
        if b.props.get("ViewerProtocolPolicy") != "redirect-to-https":
            problems.append(f"behaviour {b.pattern}: ViewerProtocolPolicy is not redirect-to-https")
        if b.props.get("Compress") is not True:
            problems.append(f"behaviour {b.pattern}: Compress is off")
    for method, path in app_routes:
        admin = path == "/admin" or path.startswith("/admin/")
        need = "none" if admin else EDGE_ROUTES.get(path)
        if need is None:
            problems.append(f"{method} {path}: not in EDGE_ROUTES (say what the edge should do)")
            continue
        sample = re.sub(r"\{(\w+)\}", lambda m: SAMPLE_VALUES.get(m[1], "x"), path)
        b = behaviour_for(sample, found)
        kind = kinds.get(b.origin, "other")
        where = f"{method} {path} (behaviour {b.pattern}, origin {b.origin})"
        if need == "none":
            if kind in ("function_url", "http_api"):
                problems.append(f"{where}: reaches the API through the distribution")
            continue
        if kind not in ("function_url", "http_api"):
            problems.append(f"{where}: does not reach the API")
            continue
        if method not in b.props.get("AllowedMethods", ["GET", "HEAD"]):
            problems.append(f"{where}: {method} is not allowed")
        problems += [f"{where}: {p}" for p in _route_need_problems(template, b, need, kind)]
    default = found[-1]
    if kinds.get(default.origin) != "example" or default.props.get("OriginRequestPolicyId") != (
        ALL_VIEWER_EXCEPT_HOST
    ):
        problems.append("the default behaviour should send everything to the example origin")
    return problems


def cloudfront_function_code(template: dict[str, Any], name: str, **values: str) -> str:
    """A CloudFront Function's code, with the ${Name} values of its !Sub filled in."""
    code = template["Resources"][name]["Properties"]["FunctionCode"]
    if isinstance(code, dict):
        text, _variables = code["Fn::Sub"]
        code = re.sub(r"\$\{(\w+)\}", lambda m: values[m[1]], text)
    return str(code)


def run_cloudfront_function(code: str, event: dict[str, Any]) -> dict[str, Any]:
    """Run a viewer-request function's handler(event) with node; its return value."""
    script = code + "\nprocess.stdout.write(JSON.stringify(handler(JSON.parse(process.argv[1]))));"
    done = subprocess.run(
        ["node", "-e", script, json.dumps(event)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result
