"""The wizard's FSM data, with a schema: what survives a restart is validated on the way back."""

from __future__ import annotations

from typing import Any

from aiogram.fsm.context import FSMContext
from pydantic import BaseModel, Field, ValidationError

from services.files import FileRef, FileRefusal
from services.tickets import Draft, new_reference


class DescriptionPart(BaseModel):
    """One message of the description: its id orders the parts and finds the part an edit
    changes."""

    message_id: int
    text: str


def _reference() -> str:
    return new_reference()


class FileNote(BaseModel):
    """A file of the current batch (one message, or one album) that was not attached."""

    reason: FileRefusal
    name: str
    size: int | None = None


class WizardData(BaseModel):
    # Idempotency key of the ticket this draft becomes: a double "Send" files it once.
    reference: str = Field(default_factory=_reference)
    # Short id carried by every button of this wizard run: a button of another run is stale.
    # The reference's beginning, so a button of a draft already sent can say so (tickets keep
    # the reference).
    draft_id: str = ""
    store_id: int | None = None
    request_type: str | None = None
    category: str | None = None
    subject: str | None = None
    description: str | None = None
    # The merchant's messages the description came from: once filed, an edit of one of them is
    # added to the ticket as a correction (handlers/my_tickets).
    description_message_ids: list[int] = Field(default_factory=list)
    # The description was given before the wizard began (a free message turned into a
    # request): after the subject, the review follows.
    prefilled: bool = False
    # Photos and documents for the ticket, in the order sent (at most services.files.MAX_FILES).
    files: list[FileRef] = Field(default_factory=list)
    # Set when the merchant edits a field from the review: the next answer returns there.
    back_to_review: bool = False
    # The state the merchant was in before /new asked whether to start over.
    paused_state: str | None = None
    # The newest prompt with buttons; older prompts lose theirs.
    prompt_message_id: int | None = None
    # The merchant's message that gave the subject: an edit of it replaces the subject.
    subject_message_id: int | None = None
    # The messages of the description (the current one, or the one being written).
    description_parts: list[DescriptionPart] = Field(default_factory=list)
    # True once a message of this visit to the description step arrived: the prompt then shows
    # what was received, with "Done"; a new visit starts a new description.
    collecting: bool = False

    def model_post_init(self, __context: Any) -> None:
        if not self.draft_id:
            self.draft_id = draft_id_of(self.reference)

    def parts(self) -> list[tuple[int, str]]:
        return [(part.message_id, part.text) for part in self.description_parts]

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
        return any((self.request_type, self.subject, self.description, self.description_parts))

    @property
    def has_description(self) -> bool:
        return bool(self.description or self.description_parts)


def draft_id_of(reference: str) -> str:
    return reference[:8]


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
