"""What the browser tests share: where chromium is, how it is launched, the running stack."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devtools import dynamodb_local

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = dynamodb_local.PROJECT_ROOT / "artifacts" / "browser"
STARTUP_SECONDS = 60


@dataclass(frozen=True)
class Stack:
    api_url: str
    origin_url: str
    edge_url: str  # nginx in front of both, as CloudFront in AWS (devtools/edge.py)
    admin_key: str
    log: Path

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
