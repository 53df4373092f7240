from __future__ import annotations

from pathlib import Path

import pytest

from services.catalog import CatalogError, load_catalog


def test_default_catalog_follows_the_regulation() -> None:
    catalog = load_catalog()
    assert [t.code for t in catalog.types] == ["technical", "modification", "administrative"]
    owner_only = {c.code for t in catalog.types for c in t.categories if c.owner_only}
    assert owner_only == {"content_deletion", "transfer_rights", "reregistration"}
    assert catalog.category("administrative", "account") is not None
    assert catalog.category("technical", "account") is None


def test_deletion_transfer_of_rights_and_reregistration_are_owner_only() -> None:
    # "Просьбы по удалению контента магазина, передаче прав на магазин и приобретенный через
    # inSales домен принимаются только в письменном виде и только от владельца магазина."
    # Re-registration («переоформление») is a transfer of the rights to the store.
    catalog = load_catalog()
    for code in ("content_deletion", "transfer_rights", "reregistration"):
        category = catalog.category("administrative", code)
        assert category is not None and category.owner_only, code
    transfer = catalog.category("administrative", "transfer_rights")
    assert transfer is not None and "domain" in transfer.label.get("en")


def test_every_label_is_in_russian_and_english() -> None:
    for request_type in load_catalog().types:
        for category in request_type.categories:
            assert category.label.get("ru") != category.label.get("en")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("types = [", "not valid TOML"),
        ("types = []", "types"),
        (
            '[[types]]\ncode = "Bad Code"\nlabel = {ru = "a", en = "b"}\n'
            '[[types.categories]]\ncode = "x"\nlabel = {ru = "a", en = "b"}\n',
            "types.0.code",
        ),
        ('[[types]]\ncode = "t"\nlabel = {ru = "a"}\n', "types.0.label.en"),
    ],
)
def test_bad_catalog_stops_with_one_clear_message(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CatalogError) as error:
        load_catalog(path)
    assert str(path) in str(error.value) and message in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_catalog(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="file not found"):
        load_catalog(tmp_path / "absent.toml")
