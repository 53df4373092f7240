"""The filing worker: registers accepted tickets in the official queue, exactly once.

A ticket and its outbox row are written together (services/tickets.submit). The worker claims due
rows, files each one and saves the queue number, retrying with capped exponential backoff and full
jitter while the queue is unreachable. Exactly once rests on the ticket's reference, stored in the
queue: before any create the worker looks the reference up, so neither a timeout after the queue
created the ticket, nor a worker killed between the queue's answer and the local commit, files it
twice. Claims are leases: rows of a dead worker come back when their lease expires. On PostgreSQL
the claim uses FOR UPDATE SKIP LOCKED, so several workers share the outbox without waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import Select, bindparam, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import joinedload

from services import assignments, modifications, notices, outbox
from services.assignments import StaffRoutes, TicketUrl
from services.db.base import UTCDateTime, utcnow
from services.db.dialect import rowcount
from services.db.models import FilingOutbox, Ticket, TicketStatus
from services.files import FileKind, FileRef, FileSource, FileUnavailable
from services.intake import MODIFICATION
from services.merchants import requester_of
from services.outbox import FileReadFailed, OutboxWorker, RetryPolicy, take_leases
from services.queue.base import (
    Attachment,
    NewTicket,
    QueueError,
    QueueRejected,
    TicketQueue,
    safe_filename,
)
from services.queue.health import QueueHealth
from services.regulation import Regulation
from services.tickets import PaidAgreement, paid_agreement_of
from services.working_calendar import MOSCOW

logger = logging.getLogger(__name__)


class _NoFiles:
    """The FileSource of a worker given none: every file is unavailable (tests of other things)."""

    async def read(self, ref: FileRef) -> bytes:
        raise FileUnavailable(f"{ref.filename}: no file source")


# --- the ticket's first message, as the queue gets it ------------------------------------------

# Lines frontdesk adds to the description for the specialist, in the ticket's language. Plain
# words here, not gettext: services do not use the bot's translations (tests/unit/test_layers).
_BODY_LINES = {
    "ru": {
        "paid": (
            "Согласие на платную доработку: {price}. Согласие дано в Telegram: {name} "
            "(id {telegram_id}), {when} (МСК)."
        ),
        "missing": (
            "Файл «{name}» не удалось получить из Telegram ({reason}); "
            "попросите клиента прислать его снова."
        ),
    },
    "en": {
        "paid": (
            "Agreement to pay for the modification: {price}. Given in Telegram by {name} "
            "(id {telegram_id}) on {when} (Moscow time)."
        ),
        "missing": (
            "The file «{name}» could not be read from Telegram ({reason}); "
            "please ask the merchant to send it again."
        ),
    },
}


def paid_agreement_field(agreement: PaidAgreement, telegram_id: int) -> str:
    """One line for the queue's field (RT: PaidAgreement): language-neutral, for reports."""
    at = agreement.at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"{agreement.amount} {agreement.currency}; {agreement.name} (telegram {telegram_id}); {at}"
    )


def ticket_body(
    description: str,
    locale: str,
    *,
    paid: PaidAgreement | None = None,
    telegram_id: int = 0,
    missing: Sequence[tuple[str, str]] = (),
) -> str:
    """The description as the merchant wrote it, then frontdesk's lines: the agreement to pay
    and the files Telegram would not give (name, reason)."""
    words = _BODY_LINES.get(locale, _BODY_LINES["ru"])
    lines = []
    if paid is not None:
        lines.append(
            words["paid"].format(
                price=f"{paid.amount} {paid.currency}",
                name=paid.name,
                telegram_id=telegram_id,
                when=paid.at.astimezone(MOSCOW).strftime("%d.%m.%Y %H:%M"),
            )
        )
    lines += [words["missing"].format(name=name, reason=reason) for name, reason in missing]
    if not lines:
        return description
    return description + "\n\n---\n" + "\n".join(lines)


def _same_second(a: datetime, b: datetime) -> bool:
    """Whether two datetimes agree to the second (RT keeps no less)."""
    return a.replace(microsecond=0) == b.replace(microsecond=0)


class FilingWorker(OutboxWorker):
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        queue: TicketQueue,
        regulation: Regulation,
        *,
        files: FileSource | None = None,
        ticket_url: TicketUrl | None = None,
        staff_groups: StaffRoutes | None = None,
        on_notice: Callable[[], None] | None = None,
        health: QueueHealth | None = None,
        retry: RetryPolicy | None = None,
        lease: timedelta = timedelta(minutes=2),
        batch: int = 10,
        on_accepted: Callable[[], None] | None = None,
        on_filed: Callable[[], None] | None = None,
        idle_interval: float = 2.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(
            "filing",
            sessionmaker,
            queue,
            on_notice=on_notice,
            health=health,
            retry=retry,
            lease=lease,
            batch=batch,
            idle_interval=idle_interval,
            clock=clock,
        )
        self._regulation = regulation
        self._due: Select[int] | None = None
        # Reads the bytes of the merchant's files (Telegram's copies) when a ticket is filed.
        self._files: FileSource = files or _NoFiles()
        # The new ticket's announcement to the specialists: its link in the queue (the queue's
        # own unless the operator set another) and the staff groups it may be routed to.
        self._ticket_url = ticket_url or queue.ticket_url
        self._staff_groups: StaffRoutes = staff_groups or {}
        # Observers (the metrics): a ticket accepted (the wizard's Send wakes this worker), and a
        # ticket registered in the queue.
        self._on_accepted = on_accepted or (lambda: None)
        self._on_filed = on_filed or (lambda: None)

    def accepted(self) -> None:
        """The wizard's Send wrote a ticket and its filing order (services.tickets.submit): file
        it now."""
        self._on_accepted()
        self.wake()

    async def _claim(self) -> list[int]:
        now = self._clock()
        if self._due is None:  # built once: the claim runs at every wake and poll
            due_now = bindparam("now", type_=UTCDateTime())
            self._due = (
                select(FilingOutbox.id)
                .where(
                    FilingOutbox.next_attempt_at <= due_now,
                    FilingOutbox.refused_at.is_(None),
                    or_(
                        FilingOutbox.claimed_until.is_(None),
                        FilingOutbox.claimed_until < due_now,
                    ),
                )
                .order_by(FilingOutbox.next_attempt_at, FilingOutbox.id)
                .limit(self._batch)
                .with_for_update(skip_locked=True)  # PostgreSQL; SQLite serialises writers
            )
        async with self._sessionmaker.begin() as session:
            ids = list(await session.scalars(self._due, {"now": now}))
            return await take_leases(session, FilingOutbox, ids, now=now, until=now + self._lease)

    async def _deliver(self, outbox_id: int) -> None:
        async with self._sessionmaker() as session:
            entry = await self._load(session, outbox_id)
            if entry is None or entry.claimed_until is None:
                return
            # Renew the lease for this row alone: a claim covers a batch delivered one after the
            # other, and a row whose lease lapsed may already be another worker's.
            lease = await self._renew(session, FilingOutbox, entry.id, entry.claimed_until)
            if lease is None:
                await session.rollback()
                return
            ticket, merchant = entry.ticket, entry.ticket.merchant
            paid = paid_agreement_of(ticket)
            # The deadlines are computed before the queue is called, from this attempt's time
            # (the queue registers the ticket now), so the queue's due date and the merchant's
            # Registered notice name the very same datetime (RT keeps whole seconds).
            registered_at = self._clock()
            deadlines = self._regulation.deadlines(
                plan=ticket.plan,
                type_code=ticket.request_type,
                category=ticket.category,
                registered_at=registered_at,
            )
            type_label, category_label = self._regulation.labels(
                ticket.request_type, ticket.category
            )
            requester = await requester_of(
                session,
                merchant_id=merchant.id,
                telegram_id=merchant.telegram_id,
                store_id=ticket.store_id,
            )
            new_ticket = NewTicket(
                reference=ticket.reference,
                requester=requester,
                subject=ticket.subject,
                body=ticket.body,
                request_type=ticket.request_type,
                category=ticket.category,
                telegram_user_id=merchant.telegram_id,
                store=ticket.store.domain if ticket.store else None,
                plan=ticket.plan,
                paid_agreement=(paid_agreement_field(paid, merchant.telegram_id) if paid else None),
                requester_name=merchant.full_name,
                store_name=ticket.store.name if ticket.store else None,
                request_type_label=type_label,
                category_label=category_label,
                priority=self._regulation.priority_for(ticket.plan),
                first_reaction_due=deadlines.first_reaction_due,
                resolution_due=deadlines.resolution_due,
            )
            refs = [
                FileRef(
                    file_id=row.file_id,
                    file_unique_id=row.file_unique_id,
                    kind=FileKind(row.kind),
                    filename=row.filename,
                    content_type=row.content_type,
                    size=row.size,
                )
                for row in ticket.files
            ]
            await session.commit()  # hold no transaction open while the queue is called

            missing: list[tuple[str, str]] = []
            try:
                queued = await self._queue.find_by_reference(new_ticket.reference)
                if queued is None:
                    # Read only now, when the queue does not have it yet: a retry after the
                    # queue took the ticket never downloads the files again.
                    attachments, missing = await self._read(ticket.reference, refs)
                    new_ticket = replace(
                        new_ticket,
                        body=ticket_body(
                            ticket.body,
                            ticket.locale,
                            paid=paid,
                            telegram_id=merchant.telegram_id,
                            missing=missing,
                        ),
                        attachments=attachments,
                    )
                    queued = await self._queue.create_ticket(new_ticket)
            except Exception as error:
                if not isinstance(error, (QueueError, FileReadFailed)):
                    # A bug must not stop the other tickets.
                    logger.exception("filing ticket %s crashed", new_ticket.reference)
                described = f"{type(error).__name__}: {error}"
                if isinstance(error, QueueRejected):
                    self._health.refused(described)
                elif not isinstance(error, FileReadFailed):  # Telegram's trouble, not the queue's
                    self._health.failed_transiently(described)
                await self._failed(session, entry, lease, error)
                return
            self._health.succeeded()

            if queued.due is not None and not _same_second(
                queued.due, deadlines.first_reaction_due
            ):
                # An earlier attempt filed it (this one found it by its reference): the queue
                # registered it then, and the merchant is told the due date the queue shows.
                registered_at = queued.created_at
                deadlines = replace(
                    self._regulation.deadlines(
                        plan=ticket.plan,
                        type_code=ticket.request_type,
                        category=ticket.category,
                        registered_at=registered_at,
                    ),
                    first_reaction_due=queued.due,
                )
            ticket.queue_ticket_id = queued.id
            ticket.status = TicketStatus.REGISTERED
            ticket.registered_at = registered_at
            ticket.first_reaction_due = deadlines.first_reaction_due
            ticket.resolution_due = deadlines.resolution_due
            quota = None
            if ticket.request_type == MODIFICATION and ticket.store and ticket.plan:
                quota = await modifications.quota_status(
                    session,
                    self._regulation.policies.quota,
                    store_id=ticket.store.id,
                    plan=ticket.plan,
                    now=registered_at,
                )
            # The number, the deadlines and the quota reach the merchant because this commit
            # writes them: the notice is part of the registration, not an afterthought.
            await notices.enqueue(
                session,
                key=f"registered:{ticket.id}",
                chat_id=merchant.telegram_id,
                locale=ticket.locale,
                ticket_id=ticket.id,
                body=notices.Registered(
                    number=queued.id,
                    subject=ticket.subject,
                    request_type=ticket.request_type,
                    category=ticket.category,
                    plan=ticket.plan,
                    registered_at=registered_at,
                    first_reaction_due=deadlines.first_reaction_due,
                    resolution_due=deadlines.resolution_due,
                    quota=quota,
                    office_hours=self._regulation.policies.office_hours(deadlines.policy),
                    paid=(
                        notices.PaidTerms(
                            amount=paid.amount, currency=paid.currency, by=paid.name, at=paid.at
                        )
                        if paid
                        else None
                    ),
                    files=len(refs) - len(missing),
                    missing_files=[name for name, _reason in missing],
                ),
                now=registered_at,
            )
            # Nobody owns the new ticket yet: the leads (or its staff group) are told, in the
            # same commit.
            await assignments.announce_unassigned(
                session,
                ticket,
                number=queued.id,
                labels=self._regulation.labels,
                ticket_url=self._ticket_url,
                routes=self._staff_groups,
            )
            # Only while the lease is still ours: if it lapsed, another worker owns the row and
            # will find the queue's ticket by its reference; this one records and tells nothing.
            done = await session.execute(
                delete(FilingOutbox).where(
                    FilingOutbox.id == entry.id, FilingOutbox.claimed_until == lease
                )
            )
            if rowcount(done) != 1:
                await session.rollback()
                logger.warning(
                    "lease on ticket %s lapsed during filing; left to its new owner",
                    new_ticket.reference,
                )
                return
            await session.commit()
        logger.info(
            "ticket %s registered as %s #%s after %d failed attempt(s)",
            new_ticket.reference,
            self._queue.name,
            queued.id,
            entry.attempts,
        )
        self._on_filed()
        self._on_notice()

    async def _read(
        self, reference: str, refs: Sequence[FileRef]
    ) -> tuple[list[Attachment], list[tuple[str, str]]]:
        """The files' bytes, and the files Telegram will never give (name, reason): those must
        not hold the ticket back for ever, so the ticket is filed without them and says so."""
        attachments: list[Attachment] = []
        missing: list[tuple[str, str]] = []
        for position, ref in enumerate(refs, 1):
            name = safe_filename(ref.filename)
            try:
                content = await self._files.read(ref)
            except FileUnavailable as error:
                # By position, and the error's kind: a file's name (which its text repeats) is
                # the merchant's words, not for the log. The ticket itself names it.
                logger.warning(
                    "ticket %s: file %d left out: %s", reference, position, type(error).__name__
                )
                missing.append((name, str(error) or type(error).__name__))
                continue
            except Exception as error:
                raise FileReadFailed(f"{name}: {type(error).__name__}: {error}") from error
            attachments.append(Attachment(name, ref.content_type, content))
        return attachments, missing

    @staticmethod
    async def _load(session: AsyncSession, outbox_id: int) -> FilingOutbox | None:
        return await session.scalar(
            select(FilingOutbox)
            .where(FilingOutbox.id == outbox_id)
            # The ticket, its merchant and store joined into the row (one statement), the files
            # in a second: five statements a filing before.
            .options(
                joinedload(FilingOutbox.ticket).joinedload(Ticket.merchant),
                joinedload(FilingOutbox.ticket).joinedload(Ticket.store),
                joinedload(FilingOutbox.ticket).selectinload(Ticket.files),
            )
        )

    async def _failed(
        self, session: AsyncSession, entry: FilingOutbox, lease: datetime, error: Exception
    ) -> None:
        """Records a failed attempt, and the notice it calls for, in one transaction."""
        ticket, telegram_id = entry.ticket, entry.ticket.merchant.telegram_id
        attempts = entry.attempts + 1
        last_error = f"{type(error).__name__}: {error}"[:2000]
        # A refusal for good (credentials revoked, a field rejected) is not an outage: retrying
        # would only hammer the queue. It waits for an operator (`frontdesk outbox retry`).
        refused = isinstance(error, QueueRejected)
        # Read before the UPDATE below, which also refreshes `entry` in this session.
        # Told once that the queue is not answering; a file Telegram did not give this time is
        # not the queue's silence, and is retried without a word.
        first_delay = not entry.delay_notified and not isinstance(error, FileReadFailed)
        delay_notified = entry.delay_notified or first_delay
        recorded = await self._record_failure(
            session,
            FilingOutbox,
            entry.id,
            lease,
            attempts=attempts,
            error=error,
            refused=refused,
            delay_notified=delay_notified,
        )
        if recorded is None:
            await session.rollback()
            return  # the lease lapsed meanwhile: the row's new owner decides
        now, next_attempt_at = recorded
        told = False
        if refused:
            # Once per ticket, however often an operator re-drives it and it is refused again.
            told = await notices.enqueue(
                session,
                key=f"refused:{ticket.id}",
                chat_id=telegram_id,
                locale=ticket.locale,
                ticket_id=ticket.id,
                body=notices.Refused(subject=ticket.subject),
                now=now,
            )
        elif first_delay:
            told = await notices.enqueue(
                session,
                key=f"delayed:{ticket.id}",
                chat_id=telegram_id,
                locale=ticket.locale,
                ticket_id=ticket.id,
                body=notices.Delayed(subject=ticket.subject),
                now=now,
            )
        await session.commit()
        if refused:
            # An error an operator alerts on: the queue will not take tickets until they act.
            logger.error(
                "queue %s refused ticket %s (id %d) for good; not retrying until "
                "`frontdesk outbox retry`: %s",
                self._queue.name,
                ticket.reference,
                ticket.id,
                last_error,
            )
        else:
            logger.warning(
                "queue %s did not take ticket %s (attempt %d, next at %s): %s",
                self._queue.name,
                ticket.reference,
                attempts,
                next_attempt_at.isoformat(timespec="seconds"),
                last_error,
            )
        if told:
            self._on_notice()


async def retry_refused(session: AsyncSession, *, ticket_id: int | None = None) -> int:
    """Re-drives filings the queue refused for good, after an operator fixed the cause: they are
    due at once. Only the given ticket's when ``ticket_id`` is set. Returns how many; commits."""
    return await outbox.retry_refused(session, FilingOutbox, ticket_id=ticket_id)
