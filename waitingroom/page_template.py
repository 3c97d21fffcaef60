"""An operator's own waiting page: which HTML a room's `page_template` may hold, checked when it
is set so that a refused template never reaches a visitor.

The page's Content-Security-Policy already blocks inline script and style; refusing them here as
well tells the operator at once, with the line, instead of a page that silently does nothing.
The page's own script and styles come in through `{{head}}` and the live part of the page (the
place in line, its texts, the language switch) through `{{queue}}`; everything else is the
operator's markup around them. Images and stylesheets may come from other http(s) sites: their
origins are added to the room's CSP (`img-src`, `style-src`) and nothing else is.

Pure: the standard library's HTML parser, no web framework.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urlsplit

# Filled by waitingroom.page; every other {{name}} is refused (it would show as typed).
BLOCKS = ("head", "queue", "logo")  # markup, outside any tag: <img> of the room's logo, or ""
REQUIRED = ("head", "queue")  # exactly once each
VALUES = ("title", "message", "logo_url", "room")  # escaped text: in text or attribute values
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")

_REFUSED_TAGS = {
    "script": "a <script> block (the page's own script comes in through {{head}})",
    "style": "a <style> block (use a stylesheet <link>; the room's colours are settings)",
    "iframe": "an <iframe>",
    "frame": "a <frame>",
    "object": "an <object>",
    "embed": "an <embed>",
    "base": "a <base> (it would move the page's own files)",
    "form": "a <form>",
    "noscript": "a <noscript> ({{queue}} has its own)",
}
# attributes a browser may follow or run as a URL (SVG animations can set href through values=)
_URL_ATTRIBUTES = {
    "href",
    "src",
    "action",
    "formaction",
    "poster",
    "data",
    "xlink:href",
    "background",
    "cite",
    "ping",
    "manifest",
    "icon",
    "values",
    "to",
    "from",
    "by",
}
_BAD_SCHEMES = ("javascript:", "vbscript:", "data:")
_INVISIBLE = re.compile(r"[\x00-\x20]+")
_MAX_PROBLEMS = 3


class TemplateError(ValueError):
    """A template a room cannot use; the message says what to change."""


@dataclass(frozen=True)
class TemplateSources:
    """The other sites a valid template loads from, for the page's CSP."""

    images: tuple[str, ...] = ()
    styles: tuple[str, ...] = ()


def _origin(url: str) -> str | None:
    """scheme://host[:port] of an absolute http(s) URL; None for a URL on the page's own site."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return None


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.images: set[str] = set()
        self.styles: set[str] = set()

    def _refuse(self, what: str) -> None:
        line, _ = self.getpos()
        self.problems.append(f"line {line}: {what}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _REFUSED_TAGS:
            self._refuse(f"{_REFUSED_TAGS[tag]} is not allowed")
        if tag == "meta" and any(n == "http-equiv" for n, _ in attrs):
            self._refuse("<meta http-equiv> is not allowed (the page's headers are the API's)")
        for name, value in attrs:
            self._attribute(tag, name, value or "", attrs)

    handle_startendtag = handle_starttag

    def _attribute(
        self, tag: str, name: str, value: str, attrs: list[tuple[str, str | None]]
    ) -> None:
        if name.startswith("on"):
            self._refuse(f"the inline handler {name}= on <{tag}> is not allowed")
        elif name == "style":
            self._refuse(f"the inline style= on <{tag}> is not allowed (use a stylesheet)")
        elif name == "srcdoc":
            self._refuse(f"srcdoc= on <{tag}> is not allowed")
        for block in BLOCKS:
            if "{{" + block + "}}" in PLACEHOLDER.sub(r"{{\1}}", value):
                self._refuse(f"{{{{{block}}}}} inside the <{tag}> tag (it goes between tags)")
        if name not in _URL_ATTRIBUTES and name != "srcset":
            return
        bare = _INVISIBLE.sub("", value).lower()
        if bare.startswith(_BAD_SCHEMES):
            self._refuse(f"a {bare.split(':')[0]}: URL in {name}= on <{tag}> is not allowed")
            return
        origin = _origin(value.strip())
        if origin and tag == "img" and name == "src":
            self.images.add(origin)
        rel = dict(attrs).get("rel") or ""
        if origin and tag == "link" and name == "href" and "stylesheet" in rel.lower().split():
            self.styles.add(origin)


@functools.lru_cache(maxsize=64)
def check_template(text: str) -> TemplateSources:
    """The other sites `text` loads from, or a TemplateError saying what to change.

    Cached: a room's page is rendered from the same template until it is changed.
    """
    checker = _Checker()
    checker.feed(text)
    checker.close()
    problems = checker.problems
    names = [m[1] for m in PLACEHOLDER.finditer(text)]
    for unknown in sorted(set(names) - set(BLOCKS) - set(VALUES)):
        problems.append(
            f"unknown placeholder {{{{{unknown}}}}} (known: "
            + ", ".join("{{" + n + "}}" for n in BLOCKS + VALUES)
            + ")"
        )
    for block in REQUIRED:
        if names.count(block) != 1:
            problems.append(
                f"{{{{{block}}}}} must appear exactly once (found {names.count(block)})"
            )
    if problems:
        more = len(problems) - _MAX_PROBLEMS
        shown = "; ".join(problems[:_MAX_PROBLEMS]) + (f"; and {more} more" if more > 0 else "")
        raise TemplateError(f"the page template cannot be used: {shown}")
    return TemplateSources(tuple(sorted(checker.images)), tuple(sorted(checker.styles)))
