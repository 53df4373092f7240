"""The sandbox's cast: two stores, a merchant, a Telegram user linked to nothing, a specialist and
a lead, linked through the product's own mechanisms (no back door): a store link token
(services/links.py) or a staff link (services/staff.py) is issued, then redeemed by the person
sending `/start <token>` to the bot through the emulator, as Telegram would after they opened the
link."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.sandbox.telegram_emulator import SimUser, TelegramEmulator
from services import links, staff
from services.db.base import utcnow
from services.db.models import Role, StaffRole

LINK_TTL = timedelta(minutes=15)


def N_(message: str) -> str:
    """Marks a message for extraction; the page's API translates it per request."""
    return message


@dataclass(frozen=True, slots=True)
class Person:
    """Someone the page lets the visitor be."""

    id: str  # the page's name for them
    user: SimUser
    # What they are in the demo: a msgid (translated in the page's language), with `{flowers}`,
    # `{books}` and `{user}` filled in after translating.
    description: str
    queue_user: str | None = None  # staff: their user name in the queue

    def describe(self, gettext: Callable[[str], str]) -> str:
        return gettext(self.description).format(
            flowers=FLOWERS.name, books=BOOKS.name, user=self.queue_user or ""
        )


@dataclass(frozen=True, slots=True)
class DemoStore:
    external_id: str
    name: str
    domain: str
    plan: str


FLOWERS = DemoStore("demo-flowers", "Цветочная лавка", "flowers.example.com", "premium")
BOOKS = DemoStore("demo-books", "Книжный угол", "books.example.com", "site")
MERCHANT_EMAIL = "anna@example.com"

MERCHANT = Person(
    "merchant",
    SimUser(id=710_000_001, first_name="Анна", username="anna_demo", language_code="ru"),
    N_("Owner of «{flowers}» (plan Premium), admin of «{books}» (plan Site)"),
)
UNLINKED = Person(
    "unlinked",
    SimUser(id=710_000_002, first_name="Пётр", username="petr_demo", language_code="ru"),
    N_("A Telegram user linked to no store: may file technical requests"),
)
SPECIALIST = Person(
    "specialist",
    SimUser(id=710_000_003, first_name="Иван", username="ivanov_demo", language_code="ru"),
    N_("Support specialist, queue user {user}"),
    queue_user="ivanov",
)
LEAD = Person(
    "lead",
    SimUser(id=710_000_004, first_name="Ольга", username="petrova_demo", language_code="ru"),
    N_("Support lead, queue user {user}"),
    queue_user="petrova",
)
PEOPLE: tuple[Person, ...] = (MERCHANT, UNLINKED, SPECIALIST, LEAD)
STAFF: tuple[Person, ...] = (SPECIALIST, LEAD)


def person(person_id: str) -> Person | None:
    return next((p for p in PEOPLE if p.id == person_id), None)


def person_of(telegram_id: int) -> Person | None:
    return next((p for p in PEOPLE if p.user.id == telegram_id), None)


async def create(
    emulator: TelegramEmulator, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Links the merchant to both stores and the staff to their queue users, each by sending
    `/start <token>` to the running bot and waiting for its answer."""
    store_links = ((FLOWERS, Role.OWNER), (BOOKS, Role.ADMIN))
    for store, role in store_links:
        async with sessionmaker() as session:
            issued = await links.issue(
                session,
                links.StoreLink(
                    external_id=store.external_id,
                    name=store.name,
                    domain=store.domain,
                    plan=store.plan,
                    role=role,
                    email=MERCHANT_EMAIL,
                ),
                ttl=LINK_TTL,
                now=utcnow(),
            )
        await _redeem(emulator, MERCHANT.user, issued.token)
    for member, staff_role in ((SPECIALIST, StaffRole.SPECIALIST), (LEAD, StaffRole.LEAD)):
        assert member.queue_user is not None
        async with sessionmaker() as session:
            issued_staff = await staff.issue_link(
                session, member.queue_user, staff_role, ttl=LINK_TTL, now=utcnow()
            )
        await _redeem(emulator, member.user, issued_staff.token)


async def _redeem(emulator: TelegramEmulator, user: SimUser, token: str) -> None:
    since = emulator.mark()
    emulator.send_text(user, f"/start {token}")
    await emulator.wait_for_message(user, timeout=30, since=since)
