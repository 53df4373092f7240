"""The wizard's FSM data, with a schema: what survives a restart is validated on the way back."""

from __future__ import annotations

import secrets
from typing import Any

from aiogram.fsm.context import FSMContext
from pydantic import BaseModel, Field, ValidationError

from services.files import FileRef, FileRefusal
from services.tickets import Draft, new_reference


class FileNote(BaseModel):
    """A file of the current batch (one message, or one album) that was not attached."""

    reason: FileRefusal
    name: str
    size: int | None = None


class WizardData(BaseModel):
    # Short id carried by every button of this wizard run: a button of another run is stale.
    draft_id: str = Field(default_factory=lambda: secrets.token_hex(4))
    # Idempotency key of the ticket this draft becomes: a double "Send" files it once.
    reference: str = Field(default_factory=new_reference)
    store_id: int | None = None
    request_type: str | None = None
    category: str | None = None
    subject: str | None = None
    description: str | None = None
    # Photos and documents for the ticket, in the order sent (at most services.files.MAX_FILES).
    files: list[FileRef] = Field(default_factory=list)
    # Set when the merchant edits a field from the review: the next answer returns there.
    back_to_review: bool = False
    # The state the merchant was in before /new asked whether to start over.
    paused_state: str | None = None
    # The newest prompt with buttons; older prompts lose theirs.
    prompt_message_id: int | None = None
    # The album (media_group_id) whose files are arriving: its files share one answer, the
    # prompt above, edited as each one comes (handlers/new_ticket/attachments.py).
    album_id: str | None = None
    # Files of the current message or album that were refused, with the reason.
    file_notes: list[FileNote] = Field(default_factory=list)
    # The Telegram message of each file in `files`: an album's updates may be handled out of
    # order (with the Redis lock), and the files keep the order the merchant sent them in.
    file_message_ids: list[int] = Field(default_factory=list)

    def to_draft(self) -> Draft:
        return Draft(
            request_type=self.request_type or "",
            category=self.category or "",
            subject=self.subject or "",
            description=self.description or "",
        )

    @property
    def has_content(self) -> bool:
        return any((self.request_type, self.subject, self.description))


async def load(state: FSMContext) -> WizardData | None:
    raw: dict[str, Any] = await state.get_data()
    if not raw:
        return None
    try:
        return WizardData.model_validate(raw)
    except ValidationError:
        return None


async def save(state: FSMContext, data: WizardData) -> None:
    await state.set_data(data.model_dump())
