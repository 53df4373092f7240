"""A plain install gives a bot that speaks every language: the wheel carries compiled catalogs,
migrations, data files and the sandbox's page."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_carries_compiled_catalogs_migrations_and_data(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("frontdesk-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "bot/locales/ru/LC_MESSAGES/messages.mo",
        "bot/locales/en/LC_MESSAGES/messages.mo",
        "services/data/catalog.toml",
        "services/data/policies.toml",
        "services/db/migrations/env.py",
        # The sandbox's page: served from the package, no build step.
        "bot/sandbox/static/index.html",
        "bot/sandbox/static/app.js",
        "bot/sandbox/static/style.css",
    } <= names
    assert any(name.startswith("services/db/migrations/versions/0001_") for name in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "frontdesk = bot.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
