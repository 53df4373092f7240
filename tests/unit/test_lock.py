"""The locks (requirements/*.lock, written by scripts/lock) agree with pyproject.toml's ranges.

pyproject.toml says what frontdesk accepts; the locks say what every install gets (bootstrap,
CI, the Docker image). A dependency added to pyproject.toml, or a range moved past the pinned
version, fails here until `scripts/lock` is run again.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+?)\s*(?:;(?P<marker>[^\\]*))?\\?$"
)
# What the Docker image and CI run on (CPython 3.11 on Linux, x86_64 and aarch64), and the newer
# Pythons pyproject.toml accepts: the lock is universal, some pins fork on the version.
TARGETS = [
    {"python_version": full[:4], "python_full_version": full, "sys_platform": "linux",
     "platform_system": "Linux", "platform_machine": machine, "os_name": "posix",
     "platform_python_implementation": "CPython", "implementation_name": "cpython", "extra": ""}
    for machine in ("x86_64", "aarch64")
    for full in ("3.11.0", "3.11.7", "3.12.8", "3.13.1")
]  # fmt: skip


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def read_lock(name: str) -> dict[str, list[tuple[Version, Marker | None]]]:
    """Each pinned package's versions (several when a marker forks them), with their hashes."""
    pins: dict[str, list[tuple[Version, Marker | None]]] = {}
    lines = (ROOT / "requirements" / name).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        match = PIN.match(line)
        if match is None:
            continue
        following = lines[number + 1] if number + 1 < len(lines) else ""
        assert following.strip().startswith("--hash=sha256:"), f"{name}: {line} has no hash"
        marker = Marker(match["marker"].strip()) if match["marker"] else None
        pins.setdefault(canonicalize_name(match["name"]), []).append(
            (Version(match["version"]), marker)
        )
    return pins


def check(requirements: list[str], lock_name: str) -> list[str]:
    lock = read_lock(lock_name)
    problems = []
    for text in requirements:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        if name not in lock:
            problems.append(f"{requirement.name} is not pinned in {lock_name}")
            continue
        for target in TARGETS:
            if requirement.marker is not None and not requirement.marker.evaluate(target):
                continue
            chosen = [v for v, m in lock[name] if m is None or m.evaluate(target)]
            if len(chosen) != 1:
                problems.append(f"{lock_name}: {len(chosen)} pins of {name} for {target}")
            elif not requirement.specifier.contains(chosen[0], prereleases=True):
                problems.append(f"{lock_name}: {name}=={chosen[0]} is outside {text!r}")
    return list(dict.fromkeys(problems))  # once, not once per target


def test_every_dependency_of_the_bot_is_pinned_in_the_base_lock_within_its_range() -> None:
    assert check(pyproject()["project"]["dependencies"], "base.lock") == []


def test_the_dev_lock_pins_the_bot_and_the_dev_extras_within_their_ranges() -> None:
    project = pyproject()["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["dev"]
    assert check(requirements, "dev.lock") == []


def test_the_build_lock_pins_what_builds_frontdesk() -> None:
    assert check(pyproject()["build-system"]["requires"], "build.lock") == []


@pytest.mark.parametrize("lock_name", ["base.lock", "build.lock"])
def test_the_base_and_build_locks_agree_with_the_dev_lock(lock_name: str) -> None:
    # bootstrap installs a lock and the build lock in one pip call: one version of each package.
    dev = read_lock("dev.lock")
    for name, pins in read_lock(lock_name).items():
        if name in dev:
            assert pins == dev[name], name


def test_a_requirement_outside_the_lock_is_reported() -> None:
    # The check itself: a range the pin does not satisfy, and a package the lock lacks.
    assert check(["aiogram>=999"], "base.lock") == [
        "base.lock: aiogram==" + str(read_lock("base.lock")["aiogram"][0][0])
        + " is outside 'aiogram>=999'"
    ]  # fmt: skip
    assert check(["no-such-package-frontdesk>=1"], "base.lock") == [
        "no-such-package-frontdesk is not pinned in base.lock"
    ]
