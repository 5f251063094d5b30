"""The documentation a reader can follow: every citation of the design resolves inside the repository."""

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DESIGN = REPO / "docs" / "design.md"
CITATION = re.compile(r"docs/design\.md\s+§\s*(\d+(?:\.\d+)?)")
OUTSIDE = re.compile(r"(\.\./shared|shared/design\.md|shared/notes|DEVELOPERS\.md|(?<![/.])\bdesign §|\bnotes §)")


def tracked_text_files():
    out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True)
    for name in out.stdout.split():
        path = REPO / name
        if path.suffix in {".py", ".md", ".yaml", ".ini", ".cfg", ".txt"} or path.name == "Makefile":
            if path.is_file():
                yield path


def design_sections():
    """Section numbers of docs/design.md headings (``## 3.`` and ``### 3.1``)."""
    numbers = set()
    for line in DESIGN.read_text(encoding="utf-8").splitlines():
        match = re.match(r"#{2,4}\s+(\d+(?:\.\d+)?)\.?\s", line)
        if match:
            numbers.add(match.group(1))
    return numbers


def test_design_has_its_numbered_sections():
    sections = design_sections()
    assert {str(n) for n in range(1, 10)} <= sections
    assert "3.1" in sections


def test_every_design_citation_resolves():
    sections = design_sections()
    unresolved = []
    cited = 0
    for path in tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in CITATION.finditer(text):
            cited += 1
            if match.group(1) not in sections:
                unresolved.append(f"{path.relative_to(REPO)}: §{match.group(1)}")
    assert cited > 20, "the code cites the design document"
    assert not unresolved, unresolved


def test_no_file_points_outside_the_repository():
    offenders = []
    for path in tracked_text_files():
        if path.resolve() == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_every_cited_test_file_exists():
    cited = re.compile(r"tests/[A-Za-z_/]+\.py")
    missing = []
    for path in tracked_text_files():
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            missing += [f"{path.relative_to(REPO)}:{number}: {m}" for m in cited.findall(line)
                        if not (REPO / m).is_file()]
    assert not missing, "\n".join(missing)
