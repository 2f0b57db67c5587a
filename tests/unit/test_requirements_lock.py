"""requirements.txt is the lock of pyproject.toml that CI installs: every dependency pinned, within its range."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest brings tomli on 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements.txt"


def _pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def _declared(extras: tuple[str, ...]) -> list[Requirement]:
    """The project's requirements with the given extras, the project's own extras (``dativo-ingest[x]``) unfolded."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    out = [Requirement(r) for r in project["dependencies"]]
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in project["optional-dependencies"][extra]:
            req = Requirement(text)
            if canonicalize_name(req.name) == canonicalize_name(project["name"]):
                todo += sorted(req.extras)
            else:
                out.append(req)
    return out


def test_every_dependency_of_the_tests_is_pinned_within_its_range() -> None:
    pins = _pins()
    assert pins, "requirements.txt has no pins"
    problems = []
    for req in _declared(("dev",)):
        if req.marker is not None and not req.marker.evaluate():
            continue
        pinned = pins.get(canonicalize_name(req.name))
        if pinned is None:
            problems.append(f"{req.name} is not in requirements.txt")
        elif not req.specifier.contains(pinned, prereleases=True):
            problems.append(f"{req.name}=={pinned} is outside {req.specifier}")
    assert not problems, f"requirements.txt is stale (run `make lock`): {problems}"


def test_the_lock_says_how_to_regenerate_it_and_ci_installs_from_it() -> None:
    header = LOCK.read_text().splitlines()[:3]
    assert any("uv pip compile pyproject.toml --extra dev" in line for line in header)
    readme = (REPO / "README.md").read_text().splitlines()
    first, tests = readme[readme.index("```bash") + 1: readme.index("```bash") + 3]
    assert "pip install -e . " in first and "[dev]" not in first  # the demo needs only the package itself
    assert "-r requirements.txt" in tests and tests in (REPO / ".ci" / "run").read_text()
