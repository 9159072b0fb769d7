"""Every `#anchor` link in the top-level Markdown files names a heading that exists, as GitHub makes anchors.

`python tests/check_links.py [DIR]` (`make check` runs it on the checkout) reads DIR's `*.md` files and checks
each link `[text](#anchor)`, `[text](OTHER.md#anchor)` and `[label]: #anchor` outside code against the
anchors of the file it points at: each heading's slug as GitHub's renderer makes it (github-slugger:
lowercased, punctuation dropped, spaces to `-`, `-1`, `-2`... for repeated headings) and `<a id/name>`
tags. Each broken link is printed as `FILE:LINE: ...` and the exit status is 1.
"""

from __future__ import annotations

import difflib
import re
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+|$)(.*)$")
_ATX_CLOSING = re.compile(r"(?:^|[ \t]+)#+[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")
_INLINE_LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\([^)]*\)")
_HTML_TAG = re.compile(r"<[^>]+>")
_HTML_ANCHOR = re.compile(r"<a\s[^>]*?\b(?:id|name)=[\"']([^\"']+)[\"']", re.IGNORECASE)
_EMPHASIS_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_+|_+(?![0-9A-Za-z])")
# The target of an inline link, `](target)` or `](target "title")`; and a reference definition's.
_LINK_TARGET = re.compile(r"\]\(\s*<?([^\s)>]*)>?(?:\s+[^)]*)?\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")


@dataclass(frozen=True)
class Link:
    """A link to an anchor: where it is written, and the file and anchor it points at."""

    source: Path
    line: int
    target: Path
    anchor: str


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading's text (github-slugger's `slug`, before de-duplication)."""
    kept = (c for c in heading.lower() if c in " -" or unicodedata.category(c)[0] in "LMN" or c == "_")
    return "".join(kept).replace(" ", "-")


def heading_text(markdown: str) -> str:
    """The text a heading renders to: code spans' content as written, links' text, no tags or emphasis marks."""
    parts: list[str] = []
    last = 0
    for code in _CODE_SPAN.finditer(markdown):
        content = code.group(2)
        if len(content) > 2 and content[0] == content[-1] == " " and content.strip():
            content = content[1:-1]  # CommonMark drops one space each side: `` `x` `` shows `x`
        parts += [_plain(markdown[last : code.start()]), content]
        last = code.end()
    parts.append(_plain(markdown[last:]))
    return "".join(parts).strip()


def _plain(markdown: str) -> str:
    text = _INLINE_LINK.sub(lambda m: m.group(1), markdown)
    # `_` is a word character to the slugger, so only the emphasis marks among them must go.
    return _EMPHASIS_UNDERSCORE.sub("", _HTML_TAG.sub("", text))


def _outside_code(lines: list[str]) -> list[tuple[int, str]]:
    """(line number, line) for every line, blank inside fenced code blocks (and for the fences themselves)."""
    kept: list[tuple[int, str]] = []
    fence = ""
    for number, line in enumerate(lines, 1):
        opened = _FENCE.match(line)
        if fence:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = ""
            kept.append((number, ""))
        elif opened:
            fence = opened.group(1)
            kept.append((number, ""))
        else:
            kept.append((number, line))
    return kept


def anchors(markdown: str) -> set[str]:
    """Every anchor a Markdown document has: its headings' slugs (repeats numbered) and HTML ids."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    paragraph: list[str] = []
    for _, line in _outside_code(markdown.splitlines()):
        found.update(_HTML_ANCHOR.findall(_CODE_SPAN.sub("", line)))
        atx = _ATX.match(line)
        if paragraph and _SETEXT.match(line):
            text, paragraph = " ".join(p.strip() for p in paragraph), []
        elif atx:
            text, paragraph = _ATX_CLOSING.sub("", atx.group(1)), []
        else:
            paragraph = [*paragraph, line] if line.strip() else []
            continue
        found.add(_numbered(slug(heading_text(text)), seen))
    return found


def _numbered(base: str, seen: dict[str, int]) -> str:
    """github-slugger's de-duplication: the second `x` is `x-1`, unless a heading already took that."""
    result = base
    while result in seen:
        seen[base] += 1
        result = f"{base}-{seen[base]}"
    seen[result] = 0
    return result


def links(path: Path) -> list[Link]:
    """The links to anchors in the Markdown file `path` (to itself or to another local Markdown file)."""
    found: list[Link] = []
    for number, line in _outside_code(path.read_text(encoding="utf-8").splitlines()):
        line = _CODE_SPAN.sub("", line)
        targets = [m.group(1) for m in _LINK_TARGET.finditer(line)]
        if reference := _REFERENCE.match(line):
            targets.append(reference.group(1))
        for target in targets:
            file, _, anchor = target.partition("#")
            if not anchor or "://" in file or file.startswith("mailto:"):  # `#` alone is the page's top
                continue
            if file and not file.lower().endswith(".md"):
                continue  # an anchor in a page or a source file: not a heading this checks
            found.append(Link(path, number, (path.parent / file).resolve() if file else path, unquote(anchor)))
    return found


def broken(root: Path) -> tuple[int, list[str]]:
    """(how many anchor links the top-level Markdown files of `root` have, a message for each broken one)."""
    known: dict[Path, set[str]] = {}
    problems: list[str] = []
    checked = 0
    for path in sorted(root.glob("*.md")):
        for link in links(path.resolve()):
            checked += 1
            where = f"{link.source.relative_to(root.resolve())}:{link.line}"
            if not link.target.is_file():
                problems.append(f"{where}: {link.target.name}#{link.anchor}: no such file")
                continue
            if link.target not in known:
                known[link.target] = anchors(link.target.read_text(encoding="utf-8"))
            if link.anchor not in known[link.target]:
                close = difflib.get_close_matches(link.anchor, sorted(known[link.target]), n=1)
                hint = f" (did you mean #{close[0]}?)" if close else ""
                problems.append(f"{where}: #{link.anchor}: no such heading in {link.target.name}{hint}")
    return checked, problems


def main(argv: list[str]) -> int:
    """Check the top-level Markdown files of the folder given (default: this checkout); 1 if any link is broken."""
    root = Path(argv[0]) if argv else ROOT
    checked, problems = broken(root)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} of {checked} anchor links broken", file=sys.stderr)
        return 1
    print(f"check_links: {checked} anchor links in {root.resolve().name}/*.md, all lead to a heading")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
