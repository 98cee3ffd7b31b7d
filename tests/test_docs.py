"""Every document the code, README and docs cite is in the repository, and so is every section.

A citation names a file under docs/ (`docs/<name>.md`), optionally followed by section numbers:
a comment's `docs/<name>.md §N`, `(docs/<name>.md §N, §M)`, or README's Markdown link followed by
`§N and §M`. Inside a Markdown file, a link to another Markdown file counts too, with the sections
after it, and in docs/ a `§N` on its own names a section of that same file. Each cited file must
exist and each cited number must number one of its headings (`## N. …`, `### N.M …`). Outside
docs/, a `§N` that follows no file names nothing and fails; so does a bare Markdown file name
that is neither at the top of the repository, beside the file citing it, nor in docs/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# What is searched: the repository's text files, but not what tools and runs leave behind.
_SUFFIXES = frozenset(
    ".py .md .yaml .yml .toml .cfg .ini .sh .lua .html .js .css .txt .mako .po .pot".split()
)
_NAMES = frozenset({"Makefile", "Procfile", "run"})
_SKIPPED_DIRS = frozenset(
    {".git", ".venv", "instance", "build", "__pycache__", "node_modules"}
    | {".pytest_cache", ".hypothesis", ".ruff_cache"}
)

_NUMBER = r"\d+(?:\.\d+)*"
# Between a file and its sections, and between sections: spaces, a comment's `#` on a wrapped
# line, a comma or semicolon, "and", "or".
_BETWEEN = r"[\s#*]*(?:[,;:]|\band\b|\bor\b)?[\s#*]*"
_SECTIONS = rf"((?:{_BETWEEN}§\s*{_NUMBER})*)"
# docs/<name>.md, then the rest of a Markdown link around it when there is one.
_DOCS_CITATION = re.compile(rf"docs/([A-Za-z0-9_.-]+?\.md)\b(?:\]\([^)\s]*\))?\)?{_SECTIONS}")
# A relative Markdown link to a Markdown file, with or without an #anchor.
_MARKDOWN_LINK = re.compile(rf"\]\(([A-Za-z0-9_./-]+?\.md)(?:#[^)\s]*)?\){_SECTIONS}")
_SECTION = re.compile(rf"§\s*({_NUMBER})")
_HEADING_NUMBER = re.compile(rf"^#{{1,6}}\s+({_NUMBER})\.?\s", re.MULTILINE)
# A Markdown file named without a folder, not part of a path or a longer word.
_BARE_NAME = re.compile(r"(?<![\w/.-])([A-Za-z0-9_-]+\.md)\b")


@dataclass(frozen=True)
class Citation:
    path: Path  # the cited file
    sections: tuple[str, ...]
    line: int


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def citations(text: str, source: Path) -> tuple[list[Citation], list[tuple[int, str]]]:
    """The citations in one file's text, and its `§N` that belong to no file: (line, number)."""
    found: list[Citation] = []
    covered: list[tuple[int, int]] = []
    is_markdown = source.suffix == ".md"
    patterns = [(_DOCS_CITATION, lambda name: DOCS / name)]
    if is_markdown:
        patterns.append((_MARKDOWN_LINK, lambda name: (source.parent / name).resolve()))
    for pattern, resolve in patterns:
        for match in pattern.finditer(text):
            if any(start <= match.start() < end for start, end in covered):
                continue  # the target of a link whose text already named the file
            sections = tuple(_SECTION.findall(match.group(2)))
            found.append(Citation(resolve(match.group(1)), sections, _line(text, match.start())))
            covered.append((match.start(), match.end()))
    loose = [
        (_line(text, match.start()), match.group(1))
        for match in _SECTION.finditer(text)
        if not any(start <= match.start() < end for start, end in covered)
    ]
    return found, loose


def heading_numbers(path: Path) -> set[str]:
    """The numbers of a Markdown file's headings: `## 4. Errors` gives 4, `### 4.3 …` 4.3."""
    return set(_HEADING_NUMBER.findall(path.read_text(encoding="utf-8")))


def repository_files() -> list[Path]:
    files = []
    for path in sorted(ROOT.rglob("*")):
        relative = path.relative_to(ROOT)
        if any(part in _SKIPPED_DIRS or part.endswith(".egg-info") for part in relative.parts):
            continue
        if relative.parts[0] == "bench" and len(relative.parts) > 1:
            if relative.parts[1].startswith("out"):
                continue  # the benchmarks' own output
        if path.is_file() and (path.suffix in _SUFFIXES or path.name in _NAMES):
            files.append(path)
    return files


def _problems_in(path: Path) -> tuple[list[str], int]:
    text = path.read_text(encoding="utf-8", errors="replace")
    where = path.relative_to(ROOT)
    found, loose = citations(text, path)
    problems = []
    for citation in found:
        if not citation.path.is_file():
            problems.append(f"{where}:{citation.line}: no such file {citation.path.name}")
            continue
        numbers = heading_numbers(citation.path)
        for section in citation.sections:
            if section not in numbers:
                problems.append(
                    f"{where}:{citation.line}: {citation.path.name} has no section §{section}"
                )
    is_doc = path.parent == DOCS
    own_numbers = heading_numbers(path) if is_doc else set()
    for line, section in loose:
        if not is_doc:
            problems.append(f"{where}:{line}: §{section} names no document")
        elif section not in own_numbers:
            problems.append(f"{where}:{line}: {path.name} has no section §{section}")
    for match in _BARE_NAME.finditer(text):
        name = match.group(1)
        if not any((folder / name).is_file() for folder in (ROOT, path.parent, DOCS)):
            line = _line(text, match.start())
            problems.append(f"{where}:{line}: {name} is not in the repository")
    return problems, len(found)


def test_every_cited_document_and_section_is_in_the_repository() -> None:
    problems: list[str] = []
    cited = 0
    for path in repository_files():
        found, count = _problems_in(path)
        problems += found
        cited += count
    assert problems == []
    # The search itself works: the code cites these documents in many places.
    assert cited > 40


def test_every_file_in_docs_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    documents = sorted(path.name for path in DOCS.glob("*.md"))
    assert documents
    assert [name for name in documents if f"(docs/{name})" not in readme] == []


# The examples below write the section sign as an escape, so that this file cites nothing itself.
S = "\u00a7"


def test_citations_are_read_in_every_form_the_repository_writes_them() -> None:
    source = ROOT / "engage" / "example.py"
    doc = "docs/" + "twilio.md"
    found, loose = citations(
        f"# see {doc} {S}4, {S}9 and {S}10.\n"
        f"# ({doc}\n# {S}11) and ([{doc}]({doc}) {S}3.2)\n"
        f"# a section of nothing: {S}7; GSM-7 has {S} in its alphabet\n",
        source,
    )
    assert [(c.path.name, c.sections, c.line) for c in found] == [
        ("twilio.md", ("4", "9", "10"), 1),
        ("twilio.md", ("11",), 2),
        ("twilio.md", ("3.2",), 3),
    ]
    assert loose == [(4, "7")]


def test_a_link_between_documents_carries_its_sections() -> None:
    found, loose = citations(
        f"See [operations.md](operations.md) {S}8, and {S}2 here.\n", DOCS / ("example" + ".md")
    )
    assert [(c.path, c.sections) for c in found] == [(DOCS / "operations.md", ("8",))]
    assert loose == [(1, "2")]


def test_heading_numbers_are_read_at_every_level() -> None:
    numbers = heading_numbers(DOCS / "architecture.md")
    assert {"1", "2", "2.1", "2.6", "4.3", "7"} <= numbers
