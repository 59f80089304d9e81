"""A strict HTML check on top of ``html.parser``: well-formed nesting, a doctype, a language, a
title, unique ids, in-page links that resolve, only web links, and no script of any kind."""

from __future__ import annotations

from html.parser import HTMLParser

VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
ALLOWED = frozenset(
    {
        "html", "head", "meta", "title", "style", "body", "header", "main", "footer", "section",
        "h1", "h2", "h3", "p", "ul", "ol", "li", "a", "strong", "em", "code", "br", "table",
        "thead", "tbody", "tr", "th", "td",
    }
)  # fmt: skip


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.doctype: str | None = None
        self.ids: set[str] = set()
        self.fragments: list[str] = []
        self.links: list[str] = []
        self.title = ""
        self.lang: str | None = None
        self.text: list[str] = []

    def _where(self) -> str:
        line, column = self.getpos()
        return f"line {line}, column {column}"

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED:
            self.errors.append(f"{self._where()}: <{tag}> is not expected")
        names = [name for name, _ in attrs]
        if len(names) != len(set(names)):
            self.errors.append(f"{self._where()}: duplicate attribute on <{tag}>")
        for name, value in attrs:
            if name.startswith("on") or (value or "").strip().lower().startswith("javascript:"):
                self.errors.append(f"{self._where()}: script in <{tag} {name}>")
            if name == "id":
                if not value or value in self.ids or any(ch.isspace() for ch in value):
                    self.errors.append(f"{self._where()}: bad or duplicate id {value!r}")
                self.ids.add(value or "")
            if tag == "a" and name == "href":
                href = value or ""
                if href.startswith("#"):
                    self.fragments.append(href[1:])
                self.links.append(href)
        if tag == "html":
            self.lang = dict(attrs).get("lang")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.errors.append(f"{self._where()}: <{tag}/> is not a void element")
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.errors.append(f"{self._where()}: </{tag}> closes a void element")
        elif not self.stack or self.stack[-1] != tag:
            self.errors.append(f"{self._where()}: </{tag}> does not close {self.stack[-1:]}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "title":
            self.title += data
        if not self.stack or self.stack[-1] != "style":
            self.text.append(data)


def check_html(document: str) -> _Checker:
    """Parse ``document``; raise ``AssertionError`` listing every problem found."""
    checker = _Checker()
    checker.feed(document)
    checker.close()
    errors = list(checker.errors)
    if checker.stack:
        errors.append(f"unclosed elements at the end: {checker.stack}")
    if (checker.doctype or "").lower() != "doctype html":
        errors.append(f"doctype is {checker.doctype!r}, not 'DOCTYPE html'")
    if not document.startswith("<!DOCTYPE html>"):
        errors.append("the doctype must come first")
    if not checker.lang:
        errors.append("<html> has no lang")
    if not checker.title.strip():
        errors.append("no <title>")
    errors += [f"link to #{f} has no target" for f in checker.fragments if f not in checker.ids]
    for href in checker.links:
        if ":" in href.split("/")[0] and not href.startswith(("http://", "https://")):
            errors.append(f"link {href!r} is not a web link")
    assert not errors, "\n".join(errors)
    return checker


def visible_text(document: str) -> str:
    """The page's text as a reader sees it (entities decoded, tags and style left out)."""
    checker = _Checker()
    checker.feed(document)
    checker.close()
    return " ".join(" ".join(checker.text).split())
