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
from typing import Any


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


def _opens_at(value: str | None) -> str | float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return value  # ISO 8601: the API validates it


def _show(args: argparse.Namespace, data: Any) -> None:
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
    elif isinstance(data, dict):
        width = max(map(len, data), default=0)
        for k, v in data.items():
            print(f"{k:<{width}}  {v}")
    else:
        print(data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="waitingroom", description=__doc__)
    parser.add_argument("--url", default=os.environ.get("WAITINGROOM_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--admin-key", default=None, help="default: $WAITINGROOM_ADMIN_KEY")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--sigv4", action="store_true", help="sign requests with AWS credentials (deployed stack)"
    )
    parser.add_argument("--region", default=None, help="with --sigv4: the stack's region")
    sub = parser.add_subparsers(dest="command", required=True)
    rooms = sub.add_parser("rooms", help="create, tune, pause, resume, close, watch rooms")
    rooms.add_argument("action", choices=["create", "set", "pause", "resume", "close", "stats"])
    rooms.add_argument("room")
    rooms.add_argument("--max-active", type=int)
    rooms.add_argument("--max-admits-per-minute", type=int)
    rooms.add_argument("--session-seconds", type=int)
    rooms.add_argument("--pickup-seconds", type=int)
    rooms.add_argument("--origin-url")
    rooms.add_argument(
        "--opens-at", help="create: a scheduled room opening then (ISO 8601 with zone, or epoch)"
    )
    rooms.add_argument("--shards", type=int)
    rooms.add_argument("--watch", action="store_true", help="with stats: refresh until Ctrl-C")
    rooms.add_argument("--interval", type=float, default=2.0, help="--watch refresh seconds")
    rooms.add_argument("--iterations", type=int, default=0, help="--watch: stop after N (0: never)")
    drain = sub.add_parser("drain", help="ask the drainer to tick a room now")
    drain.add_argument("room")
    drain.add_argument("--once", action="store_true", help="one tick (the default)")
    args = parser.parse_args(argv)

    if args.command == "drain":
        _show(args, _request(args, "POST", f"/admin/rooms/{args.room}/drain"))
    elif args.action in ("create", "set"):
        body = {
            k: v
            for k, v in {
                "max_active": args.max_active,
                "max_admits_per_minute": args.max_admits_per_minute,
                "session_seconds": args.session_seconds,
                "pickup_seconds": args.pickup_seconds,
                "origin_url": args.origin_url,
                "shards": args.shards,
                "opens_at": _opens_at(args.opens_at),
            }.items()
            if v is not None
        }
        _show(args, _request(args, "PUT", f"/admin/rooms/{args.room}", body))
    elif args.action == "stats":
        shown = 0
        while True:
            _show(args, _request(args, "GET", f"/admin/rooms/{args.room}/stats"))
            shown += 1
            if not args.watch or (args.iterations and shown >= args.iterations):
                break
            time.sleep(args.interval)
            print(flush=True)
    else:
        _show(args, _request(args, "POST", f"/admin/rooms/{args.room}/{args.action}"))


if __name__ == "__main__":
    main()
