"""Fails when the lock (requirements/*.txt) is behind pyproject.toml: every requirement
of the project, with the dev and embedded extras, must be installed at a version it
allows. (`pip check` alone cannot see a requirement the lock never installed.)"""

from __future__ import annotations

import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
wanted = [*project["dependencies"],
          *(r for extra in ("dev", "embedded")
            for r in project["optional-dependencies"][extra])]
missing = []
for line in wanted:
    requirement = Requirement(line)
    try:
        version = metadata.version(requirement.name)
    except metadata.PackageNotFoundError:
        missing.append(f"{requirement} (not installed)")
        continue
    if version not in requirement.specifier:
        missing.append(f"{requirement} (installed {version})")
if missing:
    sys.exit("requirements/*.txt is behind pyproject.toml, run `make lock`:\n  "
             + "\n  ".join(missing))
