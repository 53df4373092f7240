"""Buttons of /tickets, of a ticket's card, of notices and of free messages. Callback data carries
ids only (validated and checked for ownership by the handlers), never a text."""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from services.db.models import ReplyKind
from services.my_tickets import StoreTab, TicketLine, TicketPage

# The store filter's value for "every store" and for tickets filed without a store.
ALL_STORES = 0
NO_STORE = -1


class Act(StrEnum):
    PAGE = "p"
    CARD = "c"
    REPLY = "r"
    CLOSE = "x"
    REOPEN = "o"


class TicketsCallback(CallbackData, prefix="mt"):
    action: Act
    ticket: int = 0
    # The list's page, or on a card the first conversation entry shown ("more").
    page: int = 0
    store: int = ALL_STORES


class HeldAction(StrEnum):
    ADD = "a"
    NEW = "n"
    DROP = "d"


class HeldCallback(CallbackData, prefix="fm"):
    """A free message waiting for the merchant's choice; `held` is its short id in FSM data."""

    action: HeldAction
    held: str
    ticket: int = 0


def store_value(store_id: int | None) -> int:
    return NO_STORE if store_id is None else store_id


def store_filter(value: int) -> tuple[bool, int | None]:
    """(filtered?, store id) from the callback's store value."""
    if value == ALL_STORES:
        return False, None
    return True, None if value == NO_STORE else value


def number_label(line: TicketLine) -> str:
    return f"#{line.number}" if line.number else _("pending")


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def reply_button(ticket_id: int) -> InlineKeyboardMarkup:
    """The Reply button every notice about a ticket carries."""
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("↩️ Reply"), callback_data=TicketsCallback(action=Act.REPLY, ticket=ticket_id)
    )
    return builder.as_markup()


def list_keyboard(page: TicketPage, store: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    sizes: list[int] = []
    for line in page.lines:
        builder.button(
            text=f"{number_label(line)} · {_shorten(line.subject, 40)}",
            callback_data=TicketsCallback(action=Act.CARD, ticket=line.id, store=store),
        )
        sizes.append(1)
    navigation = 0
    if page.page > 0:
        builder.button(
            text=_("« Prev"),
            callback_data=TicketsCallback(action=Act.PAGE, page=page.page - 1, store=store),
        )
        navigation += 1
    if page.page + 1 < page.pages:
        builder.button(
            text=_("Next »"),
            callback_data=TicketsCallback(action=Act.PAGE, page=page.page + 1, store=store),
        )
        navigation += 1
    if navigation:
        sizes.append(navigation)
    if len(page.stores) > 1:
        tabs = [*page.stores, None]
        for tab in tabs:
            value = ALL_STORES if tab is None else store_value(tab.id)
            label = _store_label(tab)
            builder.button(
                text=("• " + label) if value == store else label,
                callback_data=TicketsCallback(action=Act.PAGE, page=0, store=value),
            )
        sizes += [2] * (len(tabs) // 2) + [1] * (len(tabs) % 2)
    builder.adjust(*sizes)
    return builder.as_markup()


def _store_label(tab: StoreTab | None) -> str:
    if tab is None:
        return _("All stores")
    if tab.id is None:
        return _("Without a store") + f" ({tab.count})"
    return f"{_shorten(tab.name or '', 24)} ({tab.count})"


def card_keyboard(
    line: TicketLine, *, store: int, more_from: int | None, actions: frozenset[ReplyKind]
) -> InlineKeyboardMarkup:
    """The card's buttons: what services/replies.actions allows in the ticket's status."""
    builder = InlineKeyboardBuilder()
    sizes: list[int] = []
    row = 0
    if ReplyKind.REPLY in actions:
        builder.button(
            text=_("↩️ Reply"), callback_data=TicketsCallback(action=Act.REPLY, ticket=line.id)
        )
        row += 1
    if ReplyKind.CLOSE in actions:
        builder.button(
            text=_("✅ Close"), callback_data=TicketsCallback(action=Act.CLOSE, ticket=line.id)
        )
        row += 1
    if ReplyKind.REOPEN in actions:
        builder.button(
            text=_("🔄 Reopen"), callback_data=TicketsCallback(action=Act.REOPEN, ticket=line.id)
        )
        row += 1
    if row:
        sizes.append(row)
    if more_from is not None:
        builder.button(
            text=_("Earlier messages »"),
            callback_data=TicketsCallback(
                action=Act.CARD, ticket=line.id, page=more_from, store=store
            ),
        )
        sizes.append(1)
    # From a card, the list comes as a new message: the card stays (a reply to it still goes
    # to its ticket).
    builder.button(
        text=_("« My requests"),
        callback_data=TicketsCallback(action=Act.PAGE, ticket=line.id, store=store),
    )
    sizes.append(1)
    builder.adjust(*sizes)
    return builder.as_markup()


def held_keyboard(held: str, tickets: list[TicketLine]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for line in tickets:
        builder.button(
            text=_("➕ Add to {number} «{subject}»").format(
                number=number_label(line), subject=_shorten(line.subject, 30)
            ),
            callback_data=HeldCallback(action=HeldAction.ADD, held=held, ticket=line.id),
        )
    builder.button(
        text=_("📝 New request with this text"),
        callback_data=HeldCallback(action=HeldAction.NEW, held=held),
    )
    builder.button(
        text=_("Never mind"), callback_data=HeldCallback(action=HeldAction.DROP, held=held)
    )
    builder.adjust(1)
    return builder.as_markup()
