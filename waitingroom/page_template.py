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

from waitingroom.rooms import origin_of

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
_OTHER_SITE = ("http:", "https:", "//", "/\\", "\\")  # after _INVISIBLE is taken out
# Read in the raw text, not from the parser: browsers and Python's HTMLParser disagree on where
# some comments and declarations end (Python 3.11 reads `<!-->...-->` as one comment, a browser
# ends it at `<!-->`), so markup hidden from the check could reach the visitor. A template has
# no use for them: only the doctype is allowed.
_DECLARATION = re.compile(r"<!(?!doctype[\s>])", re.I)
_META_EQUIV = re.compile(r"<meta\b[^>]*?http-equiv", re.I)
_META_REFUSED = "<meta http-equiv> is not allowed (the page's headers are the API's)"
_INVISIBLE = re.compile(r"[\x00-\x20]+")
_MAX_PROBLEMS = 3


class TemplateError(ValueError):
    """A template a room cannot use; the message says what to change."""


@dataclass(frozen=True)
class TemplateSources:
    """The other sites a valid template loads from, for the page's CSP."""

    images: tuple[str, ...] = ()
    styles: tuple[str, ...] = ()


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
            self._refuse(_META_REFUSED)
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
        origin = origin_of(value.strip())
        if origin is None and bare.startswith(_OTHER_SITE):
            self._refuse(
                f"{name}= on <{tag}> must be a path on this site or an http(s) URL whose host is "
                "letters, digits, dots and dashes (no user@, no spaces, not //host)"
            )
            return
        if origin and tag == "img" and name == "src":
            self.images.add(origin)
        rel = dict(attrs).get("rel") or ""
        if origin and tag == "link" and name == "href" and "stylesheet" in rel.lower().split():
            self.styles.add(origin)


def _raw_problems(text: str) -> list[str]:
    """What is refused in the raw text, before any parser reads it."""
    problems = []
    for found in _DECLARATION.finditer(text):
        line = text.count("\n", 0, found.start()) + 1
        problems.append(
            f"line {line}: an HTML comment or <! declaration is not allowed (browsers and "
            "checkers disagree on where some end; only <!DOCTYPE html> is allowed)"
        )
    for found in _META_EQUIV.finditer(text):
        line = text.count("\n", 0, found.start()) + 1
        problems.append(f"line {line}: {_META_REFUSED}")
    return problems


@functools.lru_cache(maxsize=64)
def check_template(text: str) -> TemplateSources:
    """The other sites `text` loads from, or a TemplateError saying what to change.

    Cached: a room's page is rendered from the same template until it is changed.
    """
    checker = _Checker()
    checker.feed(text)
    checker.close()
    # the parser finds a <meta http-equiv> the raw text shows too: said once
    problems = list(dict.fromkeys(_raw_problems(text) + checker.problems))
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
