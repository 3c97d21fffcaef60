"""The `waitingroom` command: operate rooms over the admin API (locally or a deployed stack).

The local stack is not here: `make dev` runs `python -m devtools.devstack` from the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from waitingroom.rooms import QUEUEINGS, ROOM_FIELDS, ROOM_STATUSES, RoomField


def _sigv4_headers(method: str, url: str, data: bytes | None, region: str | None) -> dict[str, str]:
    """Headers of a request signed for API Gateway's IAM auth (execute-api), with the default
    AWS credential chain (environment, profile, SSO, instance role)."""
    import boto3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    session = boto3.Session(region_name=region)
    credentials = session.get_credentials()
    if credentials is None:
        sys.exit("--sigv4: no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID)")
    request = AWSRequest(
        method=method, url=url, data=data or b"", headers={"Content-Type": "application/json"}
    )
    SigV4Auth(credentials, "execute-api", session.region_name or "us-east-1").add_auth(request)
    return dict(request.headers.items())


def _request(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    url = args.url.rstrip("/") + path
    if args.sigv4:
        headers = _sigv4_headers(method, url, data, args.region)
    else:
        key = args.admin_key or os.environ.get("WAITINGROOM_ADMIN_KEY", "")
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    req = urllib.request.Request(  # noqa: S310 - the operator's own URL
        url, data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            text = resp.read().decode()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode()
        try:
            message = json.loads(detail).get("message", detail)
        except ValueError:
            message = detail
        sys.exit(f"error {exc.code}: {message}")
    except urllib.error.URLError as exc:
        sys.exit(f"cannot reach {args.url}: {exc.reason}")
    return json.loads(text) if text else None


def _time(value: str) -> str | float:
    try:
        return float(value)
    except ValueError:
        return value  # ISO 8601: the API validates it


def _file_text(path: str) -> str:
    """A page template from its file ("" clears it; the API checks the contents)."""
    if not path:
        return ""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {path}: {exc.strerror}") from exc


def _add_setting(group: argparse._ArgumentGroup, spec: RoomField[Any]) -> None:
    """One flag per room setting, from its definition; the API checks the values."""
    notes = []
    if spec.ge is not None or spec.le is not None:
        notes.append(f"{'' if spec.ge is None else spec.ge}..{'' if spec.le is None else spec.le}")
    if spec.required:
        notes.append("required by create")
    elif spec.default is not None and spec.default != "":
        notes.append(f"default {str(spec.default).lower()}")
    notes += {"at creation": ["fixed once created"], "until drawn": ["movable until the draw"]}.get(
        spec.changes, []
    )
    text = spec.description + (f" [{'; '.join(notes)}]" if notes else "")
    help_text = text.replace("%", "%%")
    dest = spec.name
    if spec.kind == "bool":
        group.add_argument(
            spec.flag, dest=dest, action=argparse.BooleanOptionalAction, help=help_text
        )
    elif spec.kind == "int":
        group.add_argument(spec.flag, dest=dest, type=int, metavar="N", help=help_text)
    elif spec.kind == "status":
        group.add_argument(spec.flag, dest=dest, choices=ROOM_STATUSES, help=help_text)
    elif spec.kind == "queueing":
        group.add_argument(spec.flag, dest=dest, choices=QUEUEINGS, help=help_text)
    elif spec.kind == "time":
        group.add_argument(spec.flag, dest=dest, type=_time, metavar="TIME", help=help_text)
    elif spec.kind == "origins":
        group.add_argument(spec.flag, dest=dest, metavar="ORIGINS", help=help_text)
    elif spec.kind == "template":
        group.add_argument(
            spec.flag, dest=dest, type=_file_text, metavar="FILE", help=help_text + " (a file)"
        )
    else:
        metavar = {"text": "TEXT", "color": "#RRGGBB"}.get(spec.kind, "URL")
        group.add_argument(spec.flag, dest=dest, metavar=metavar, help=help_text)


def _show(args: argparse.Namespace, data: Any) -> None:
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
    elif isinstance(data, dict):
        width = max(map(len, data), default=0)
        for k, v in data.items():
            print(f"{k:<{width}}  {v}")
    else:
        print(data)


def default_url(env: Mapping[str, str] = os.environ) -> str:
    """$WAITINGROOM_URL, else the local API on $PORT (the variable `make dev` reads), else 8080."""
    return env.get("WAITINGROOM_URL") or f"http://127.0.0.1:{env.get('PORT') or 8080}"


def _global_options(top: bool) -> argparse.ArgumentParser:
    """The options every command takes, before or after its name. A command's copy has no
    defaults (SUPPRESS), so it overrides the top level's only when given there."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("global options (before or after the command)")

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    url = default_url()
    group.add_argument(
        "--url",
        default=default(url),
        help="the API (default: $WAITINGROOM_URL, else http://127.0.0.1:$PORT, else port 8080;"
        f" here: {url})",
    )
    group.add_argument("--admin-key", default=default(None), help="default: $WAITINGROOM_ADMIN_KEY")
    group.add_argument(
        "--json", action="store_true", default=default(False), help="machine-readable output"
    )
    group.add_argument(
        "--sigv4",
        action="store_true",
        default=default(False),
        help="sign requests with AWS credentials (deployed stack)",
    )
    group.add_argument("--region", default=default(None), help="with --sigv4: the stack's region")
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="waitingroom", description=__doc__, parents=[_global_options(top=True)]
    )
    common = [_global_options(top=False)]
    sub = parser.add_subparsers(dest="command", required=True)
    rooms = sub.add_parser(
        "rooms", help="create, tune, pause, resume, close, watch rooms", parents=common
    )
    rooms.add_argument("action", choices=["create", "set", "pause", "resume", "close", "stats"])
    rooms.add_argument("room")
    settings = rooms.add_argument_group("room settings (create, set; omitted: unchanged)")
    for spec in ROOM_FIELDS:
        _add_setting(settings, spec)
    rooms.add_argument("--watch", action="store_true", help="with stats: refresh until Ctrl-C")
    rooms.add_argument("--interval", type=float, default=2.0, help="--watch refresh seconds")
    rooms.add_argument("--iterations", type=int, default=0, help="--watch: stop after N (0: never)")
    drain = sub.add_parser("drain", help="ask the drainer to tick a room now", parents=common)
    drain.add_argument("room")
    drain.add_argument("--once", action="store_true", help="one tick (the default)")
    return parser


def _watch(args: argparse.Namespace) -> None:
    """Stats once, or with --watch again every --interval seconds until Ctrl-C (a normal way
    to stop watching: "stopped" and exit status 0, no traceback)."""
    shown = 0
    try:
        while True:
            _show(args, _request(args, "GET", f"/admin/rooms/{args.room}/stats"))
            shown += 1
            if not args.watch or (args.iterations and shown >= args.iterations):
                return
            time.sleep(args.interval)
            print(flush=True)
    except KeyboardInterrupt:
        if not args.watch:
            raise
        print("stopped", flush=True)


def _run(args: argparse.Namespace) -> None:
    if args.command == "drain":
        _show(args, _request(args, "POST", f"/admin/rooms/{args.room}/drain"))
    elif args.action in ("create", "set"):
        body = {
            spec.name: getattr(args, spec.name)
            for spec in ROOM_FIELDS
            if getattr(args, spec.name) is not None
        }
        _show(args, _request(args, "PUT", f"/admin/rooms/{args.room}", body))
    elif args.action == "stats":
        _watch(args)
    else:
        _show(args, _request(args, "POST", f"/admin/rooms/{args.room}/{args.action}"))


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        _run(args)
    except KeyboardInterrupt:
        sys.exit("interrupted")  # no traceback; exit status 1, as for any error


if __name__ == "__main__":
    main()
