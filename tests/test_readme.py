"""README.md and docs/: every relative link resolves (file and #anchor), and the README tells the story in
order: what it is, the two commands and their times, the findings, the results tables with the command
and commit that produced them; the long material lives in docs/."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from sbir_utils import paths

ROOT = paths.PROJECT_ROOT
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """``text`` without fenced code blocks (a ``# comment`` in a shell block is no heading)."""
    return re.sub(r"(?ms)^```.*?^```", "", text)


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    out = set()
    for heading in re.findall(r"(?m)^#{1,6}\s+(.+?)\s*$", _prose(path.read_text(encoding="utf-8"))):
        out.add(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return out


def test_anchor_rule():
    page = ROOT / "README.md"
    assert {"two-commands", "results", "does-the-embedded-set-help-on-real-sketches-notebook-06-sbir-transfer"} \
        <= anchors(page)
    assert "the-same-through-the-notebooks-make-reproduce-datasetshoes-transfer-data_rootdatashoes-transfer" \
        not in anchors(page)  # a comment in a code block


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page: Path):
    broken = []
    for target in LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / unquote(file_part)).resolve() if file_part else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{page.name}: {broken}"


def test_readme_leads_with_the_story():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    sections = re.findall(r"(?m)^## (.+)$", _prose(text))
    assert sections[:3] == ["Two commands", "What the study found", "Results"]
    commands = text[text.index("## Two commands"):text.index("## What the study found")]
    for needed in ("make reproduce ", "make test ", "PROFILE=smoke"):
        assert needed in commands, needed
    # every timed command says how long it took and at which commit
    for row in ("**`make reproduce`**", "**`make test`**", "`make reproduce PROFILE=smoke`", "`make venv`"):
        line = next(line for line in commands.splitlines() if line.startswith(f"| {row}"))
        assert re.search(r"\d+ min \d+ s", line) and re.search(r"at `[0-9a-f]{7}`", line), line
    results = text[text.index("## Results"):text.index("## Real datasets")]
    assert "Produced by `make reproduce` (profile `cpu`, embedded data) at commit `e1cc0f8`" in results
    assert results.count("| model |") == 2 and "| method | seeds | acc@1 | acc@10 | MRR |" in results
    assert "the `--rows` command above at commit `b6b1857`" in results  # the transfer table's provenance
    assert len(text.encode("utf-8")) < 16_000, "the long material belongs in docs/"
    for page in ("docs/running.md", "docs/results.md", "docs/cli.md", "docs/datasets.md", "docs/development.md",
                 "docs/embedded-data.md", "docs/benchmarks.md"):
        assert f"]({page}" in text, f"README does not point to {page}"
