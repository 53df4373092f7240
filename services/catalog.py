"""The request catalog: types and categories, loaded from a data file and validated once."""

from __future__ import annotations

import tomllib
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_CATALOG = Path(__file__).resolve().parent / "data" / "catalog.toml"
CODE_PATTERN = r"^[a-z][a-z0-9_]{0,23}$"  # short: codes travel in 64-byte callback data


class CatalogError(Exception):
    """The catalog file is missing or invalid; start-up stops with this one line."""


class LocalizedText(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ru: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def get(self, locale: str) -> str:
        return self.en if locale == "en" else self.ru


class Category(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=CODE_PATTERN)
    label: LocalizedText
    questions: tuple[LocalizedText, ...] = ()
    owner_only: bool = False
    system_error: bool = False
    # The request changes, or speaks for, a store's account (its data, plan, money, rights):
    # never filed by someone linked to no store (UNLINKED_MAY_FILE, services/intake.py).
    touches_account: bool = False


class RequestType(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=CODE_PATTERN)
    label: LocalizedText
    hint: LocalizedText | None = None
    # Every category of the type touches an account (see Category.touches_account).
    touches_account: bool = False
    categories: tuple[Category, ...] = Field(min_length=1)

    @field_validator("categories")
    @classmethod
    def _unique_codes(cls, categories: tuple[Category, ...]) -> tuple[Category, ...]:
        codes = [category.code for category in categories]
        duplicates = sorted({code for code in codes if codes.count(code) > 1})
        if duplicates:
            raise ValueError(f"duplicate category codes: {', '.join(duplicates)}")
        return categories

    def category(self, code: str) -> Category | None:
        return next((category for category in self.categories if category.code == code), None)


class Catalog(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    types: tuple[RequestType, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_type_codes(self) -> Catalog:
        codes = [request_type.code for request_type in self.types]
        if len(codes) != len(set(codes)):
            raise ValueError("duplicate type codes")
        return self

    @cached_property
    def _by_code(self) -> dict[str, RequestType]:
        return {request_type.code: request_type for request_type in self.types}

    def type(self, code: str) -> RequestType | None:
        return self._by_code.get(code)

    def category(self, type_code: str, category_code: str) -> Category | None:
        request_type = self.type(type_code)
        return request_type.category(category_code) if request_type else None

    def touches_account(self, type_code: str, category_code: str) -> bool:
        """Whether the request acts on a store's account; owner-only ones always do. An unknown
        code counts as touching one (the safe answer)."""
        request_type = self.type(type_code)
        category = request_type.category(category_code) if request_type else None
        if request_type is None or category is None:
            return True
        return request_type.touches_account or category.touches_account or category.owner_only


def load_catalog(path: Path = DEFAULT_CATALOG) -> Catalog:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        return Catalog.model_validate(raw)
    except FileNotFoundError as error:
        raise CatalogError(f"request catalog {path}: file not found") from error
    except tomllib.TOMLDecodeError as error:
        raise CatalogError(f"request catalog {path}: not valid TOML: {error}") from error
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise CatalogError(f"request catalog {path}: {where}: {first['msg']}") from error
