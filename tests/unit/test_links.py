"""Link tokens, the unlinked merchant's rule and the platform API's checks: plain code, no I/O."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace

import pytest
from pydantic import ValidationError

from bot.api import LinkBody, StoreBody
from bot.config import Settings
from services import intake, links
from services.regulation import IntakePolicy, Regulation, UnlinkedFiling, load_regulation

REGULATION = load_regulation()
PLANS = {"plans": REGULATION.policies.plans}


def test_token_is_random_256_bits_and_fits_a_telegram_deep_link() -> None:
    tokens = {links.new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    for token in tokens:
        # Telegram's deep-link payload: at most 64 characters of A-Z, a-z, 0-9, _ and -.
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", token)
        assert len(token) == 43  # 32 random bytes, base64url without padding
        assert links.looks_like_token(token)


def test_token_is_stored_as_its_sha256_never_as_itself() -> None:
    token = links.new_token()
    digest = links.hash_token(token)
    assert digest == hashlib.sha256(token.encode()).hexdigest()
    assert token not in digest and len(digest) == 64
    assert links.hash_token(links.new_token()) != digest


@pytest.mark.parametrize("junk", ["", "a" * 65, "abc def", "токен", "../etc", "a+b/c="])
def test_a_payload_that_cannot_be_a_token_is_refused_before_any_lookup(junk: str) -> None:
    assert not links.looks_like_token(junk)


def test_link_is_a_telegram_deep_link_to_the_bot() -> None:
    assert (
        links.link_url("@frontdesk_bot", "abc_DEF-1")
        == "https://t.me/frontdesk_bot?start=abc_DEF-1"
    )


def test_only_technical_requests_touch_no_account() -> None:
    catalog = REGULATION.catalog
    free_of_account = {
        (t.code, c.code)
        for t in catalog.types
        for c in t.categories
        if not catalog.touches_account(t.code, c.code)
    }
    technical = {c.code for c in catalog.types[0].categories}
    assert free_of_account == {("technical", code) for code in technical}
    assert catalog.touches_account("administrative", "refund")
    assert catalog.touches_account("administrative", "content_deletion")  # owner-only
    assert catalog.touches_account("modification", "template")
    assert catalog.touches_account("nonsense", "nothing")  # the safe answer


def _regulation(choice: UnlinkedFiling) -> Regulation:
    return replace(REGULATION, intake=IntakePolicy(unlinked_may_file=choice))


def test_unlinked_merchant_files_nothing_by_default() -> None:
    assert REGULATION.intake.unlinked_may_file is UnlinkedFiling.NONE
    assert not intake.may_start(REGULATION, linked=False)
    assert intake.may_start(REGULATION, linked=True)
    assert not intake.unlinked_may_file(REGULATION, "technical", "system_error")


def test_unlinked_merchant_may_file_technical_requests_only_if_the_operator_allows() -> None:
    regulation = _regulation(UnlinkedFiling.TECHNICAL)
    assert intake.may_start(regulation, linked=False)
    assert intake.unlinked_may_file(regulation, "technical", "system_error")
    for type_code, category in [
        ("administrative", "account"),
        ("administrative", "refund"),
        ("administrative", "transfer_rights"),
        ("modification", "template"),
    ]:
        assert not intake.unlinked_may_file(regulation, type_code, category)


def test_link_request_fields_are_checked_one_by_one() -> None:
    good = {
        "store_id": 42,
        "name": "Цветы",
        "domain": "Flowers.Example.COM",
        "plan": "premium",
        "role": "owner",
        "email": "anna@example.com",
    }
    body = LinkBody.model_validate(good, context=PLANS)
    assert (body.store_id, body.domain) == ("42", "flowers.example.com")

    bad = {**good, "plan": "gold", "role": "boss", "email": "anna", "domain": "not a domain"}
    with pytest.raises(ValidationError) as error:
        LinkBody.model_validate(bad, context=PLANS)
    assert {problem["loc"][0] for problem in error.value.errors()} == {
        "plan",
        "role",
        "email",
        "domain",
    }
    for domain in ("цветы.рф", "xn--b1agh1afp.xn--p1ai", "my-shop.example.co.uk"):
        assert LinkBody.model_validate({**good, "domain": domain}, context=PLANS).domain == domain
    for domain in ("-shop.example.com", "shop..example.com", "shop", "shop.example.com/x"):
        with pytest.raises(ValidationError):
            LinkBody.model_validate({**good, "domain": domain}, context=PLANS)
    with pytest.raises(ValidationError):
        LinkBody.model_validate({**good, "extra": 1}, context=PLANS)
    with pytest.raises(ValidationError):
        StoreBody.model_validate({"plan": "gold"}, context=PLANS)


def test_settings_refuse_a_short_api_key_and_a_bad_bot_username() -> None:
    token = "123456:ABC"
    with pytest.raises(ValidationError, match="at least 16"):
        Settings(bot_token=token, platform_api_key="short", _env_file=None)  # type: ignore[arg-type,call-arg]
    with pytest.raises(ValidationError, match="username"):
        Settings(bot_token=token, bot_username="no spaces", _env_file=None)  # type: ignore[arg-type,call-arg]
    settings = Settings(bot_token=token, bot_username="@frontdesk_bot", _env_file=None)  # type: ignore[arg-type,call-arg]
    assert settings.bot_username == "frontdesk_bot"
    assert settings.link_ttl_seconds == 900
    assert settings.unlinked_may_file is UnlinkedFiling.NONE
