"""Which files a request takes (services/files.py) and how the queue's first message names the
agreement to pay and a file Telegram no longer gives (services/filing.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from services.files import MAX_FILE_BYTES, MAX_FILES, FileKind, FileRef, FileRefusal, refusal_for
from services.filing import paid_agreement_field, ticket_body
from services.tickets import PaidAgreement


def _ref(number: int, size: int | None = 1000) -> FileRef:
    return FileRef(
        file_id=f"id-{number}",
        file_unique_id=f"unique-{number}",
        kind=FileKind.PHOTO,
        filename=f"photo-{number}.jpg",
        size=size,
    )


def test_a_request_takes_up_to_ten_files_each_within_the_bot_apis_20_mb() -> None:
    attached = [_ref(n) for n in range(MAX_FILES - 1)]
    assert refusal_for(attached, _ref(100)) is None
    assert refusal_for(attached, _ref(101, size=MAX_FILE_BYTES)) is None
    assert refusal_for(attached, _ref(102, size=MAX_FILE_BYTES + 1)) is FileRefusal.TOO_BIG
    assert refusal_for(attached, _ref(103, size=None)) is None  # Telegram did not say: try it
    assert refusal_for([*attached, _ref(104)], _ref(105)) is FileRefusal.TOO_MANY


def test_the_same_file_twice_is_attached_once() -> None:
    assert refusal_for([_ref(1)], _ref(1)) is FileRefusal.DUPLICATE


AGREEMENT = PaidAgreement(
    merchant_id=1,
    name="Анна",
    at=datetime(2026, 11, 25, 9, 30, tzinfo=UTC),
    amount=500,
    currency="RUB",
)


def test_the_body_carries_the_agreement_and_the_missing_files_in_the_tickets_language() -> None:
    assert ticket_body("Описание.", "ru") == "Описание."
    body = ticket_body(
        "Описание.", "ru", paid=AGREEMENT, telegram_id=42, missing=[("photo-2.jpg", "gone")]
    )
    assert body.startswith("Описание.\n\n---\n")
    assert (
        "Согласие на платную доработку: 500 RUB. Согласие дано в Telegram: Анна (id 42), "
        "25.11.2026 12:30 (МСК)." in body
    )
    assert "Файл «photo-2.jpg» не удалось получить из Telegram (gone)" in body
    english = ticket_body("Text.", "en", paid=AGREEMENT, telegram_id=42)
    assert "Given in Telegram by Анна (id 42) on 25.11.2026 12:30 (Moscow time)." in english


def test_the_queues_field_is_one_language_neutral_line() -> None:
    assert (
        paid_agreement_field(AGREEMENT, 42) == "500 RUB; Анна (telegram 42); 2026-11-25T09:30:00Z"
    )
