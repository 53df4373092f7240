"""Every catalog compiles, covers the template, and keeps the placeholders of its messages."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
LOCALES = ROOT / "locales"
PLACEHOLDER = re.compile(r"{\w*}")


def _catalog(path: Path):  # type: ignore[no-untyped-def]
    with path.open("rb") as file:
        return read_po(file)


def _ids(catalog) -> set[str]:  # type: ignore[no-untyped-def]
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}


@pytest.mark.parametrize("locale", ["ru", "en"])
def test_catalog_compiles_and_covers_the_template(locale: str) -> None:
    template = _ids(_catalog(LOCALES / "messages.pot"))
    catalog = _catalog(LOCALES / locale / "LC_MESSAGES" / "messages.po")
    write_mo(io.BytesIO(), catalog)  # raises on a broken catalog
    assert template <= _ids(catalog), "run the pybabel update command from the README"
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"untranslated in {locale}: {message.id!r}"
        assert "fuzzy" not in message.flags, f"fuzzy in {locale}: {message.id!r}"
        source = message.id if isinstance(message.id, str) else message.id[0]
        for string in strings:
            assert sorted(PLACEHOLDER.findall(string)) == sorted(PLACEHOLDER.findall(source))


def test_template_is_up_to_date(tmp_path: Path) -> None:
    fresh = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_",
            "-k",
            "__",
            "-k",
            "N_",
            "-k",
            "ngettext:1,2",
            "--no-location",
            "--sort-output",
            "-o",
            str(fresh),
            "bot",
            "handlers",
            "services",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    assert _ids(_catalog(fresh)) == _ids(_catalog(LOCALES / "messages.pot")), (
        "messages.pot is stale: run the pybabel extract command from the README"
    )


@pytest.mark.parametrize("locale", ["ru", "en"])
def test_compiled_catalog_is_installed(locale: str) -> None:
    assert (LOCALES / locale / "LC_MESSAGES" / "messages.mo").is_file()
