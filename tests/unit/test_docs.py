"""The READMEs match the code: every relative link and every repository path they name
exists, and every role they name is one the API accepts (POST /api/v1/users)."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest

from gateway.routes.identity import RoleName

ROOT = Path(__file__).resolve().parents[2]
READMES = sorted(p for p in [*ROOT.glob("*.md"), *ROOT.glob("services/*/README.md"),
                             *ROOT.glob("deploy/*.md"), *ROOT.glob("docs/*.md"),
                             *ROOT.glob("tests/*/README.md")])
TOP_LEVEL = ("services/", "shared/", "gateway/", "tests/", "protos/", "deploy/", "docs/",
             "portal/", "suite/", "requirements/")
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
CODE = re.compile(r"`([A-Za-z0-9_./-]+)`")
ROLE = re.compile(r"\broles?\s+((?:`[a-z_]+`(?:,\s*|\s+or\s+|\s+and\s+)?)+)")
API_ROLES = set(typing.get_args(RoleName))


def named_paths(readme: Path) -> list[str]:
    text = readme.read_text(encoding="utf-8")
    paths = [m.group(1) for m in LINK.finditer(text) if "://" not in m.group(1)
             and not m.group(1).startswith("mailto:")]
    paths += [m.group(1) for m in CODE.finditer(text)
              if m.group(1).startswith(TOP_LEVEL) or m.group(1).endswith("README.md")]
    return paths


def exists(readme: Path, path: str) -> bool:
    # A path in a README is relative to it, or (in code spans) to the repository.
    return any((base / path).exists() for base in (readme.parent, ROOT))


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_named_path_exists(readme):
    missing = [path for path in named_paths(readme) if not exists(readme, path)]
    assert not missing, f"{readme.relative_to(ROOT)} names paths that do not exist: {missing}"


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_named_role_is_one_the_api_accepts(readme):
    text = readme.read_text(encoding="utf-8")
    named = {role for match in ROLE.finditer(text)
             for role in re.findall(r"`([a-z_]+)`", match.group(1))}
    unknown = sorted(named - API_ROLES)
    assert not unknown, (f"{readme.relative_to(ROOT)} names roles the API does not accept: "
                         f"{unknown} (known: {sorted(API_ROLES)})")
