"""`frontdesk` command line: run (polling or webhook), worker, sandbox, migrate, outbox retry,
link, staff."""

from __future__ import annotations

import argparse
import asyncio
import sys
import traceback
from datetime import timedelta
from pathlib import Path
from typing import NoReturn

from pydantic import ValidationError

from bot.config import Settings
from bot.logs import configure_logging
from services.catalog import CatalogError
from services.sla import PolicyFileError


def _settings() -> Settings:
    try:
        return Settings()  # type: ignore[call-arg]  # the required fields come from the environment
    except ValidationError as error:
        # One clear line per bad setting, never a traceback.
        for problem in error.errors():
            name = "_".join(str(part) for part in problem["loc"]).upper() or "settings"
            message = problem["msg"].removeprefix("Value error, ")
            if problem["type"] == "missing":
                message = "is required but not set"
            print(f"frontdesk: configuration error: {name}: {message}", file=sys.stderr)
        raise SystemExit(2) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frontdesk", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run", help="run the bot (long polling unless --webhook)")
    run.add_argument("--webhook", action="store_true", help="serve the Telegram webhook instead")
    commands.add_parser(
        "worker",
        help="run only the background loops (filing, replies, notes, staff actions, delivery, "
        "SLA watch, sync), in any number of processes beside webhook processes run with "
        "RUN_WORKERS=false; PostgreSQL only (docs/deploy.md)",
    )
    sandbox = commands.add_parser(
        "sandbox",
        help="try frontdesk without Telegram: the bot, an emulated Telegram and the builtin "
        "queue in one process, offline, with a web page on loopback (no settings needed)",
    )
    sandbox.add_argument(
        "--reset", action="store_true", help="delete ./.frontdesk-sandbox and start afresh"
    )
    sandbox.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where .frontdesk-sandbox/ lives (default: the working directory)",
    )
    sandbox.add_argument("--host", default="127.0.0.1", help="the page's address (127.0.0.1)")
    sandbox.add_argument(
        "--port", type=int, default=8090, help="the page's port (8090; 0: any free port)"
    )
    commands.add_parser("migrate", help="apply database migrations and exit")
    outbox = commands.add_parser("outbox", help="the filing and reply outboxes").add_subparsers(
        dest="outbox_command", required=True
    )
    retry = outbox.add_parser(
        "retry",
        help="re-drive filings and merchants' replies the queue refused for good, once the "
        "cause is fixed",
    )
    retry.add_argument("--ticket", type=int, help="frontdesk's ticket id (as logged); all if unset")
    link = commands.add_parser(
        "link", help="print a single-use link that links a Telegram user to a store"
    )
    link.add_argument("--store-id", required=True, help="the store's id on the platform")
    link.add_argument("--name", required=True, help="the store's name")
    link.add_argument("--domain", required=True, help="the store's domain")
    link.add_argument("--plan", required=True, help="the store's plan (policies.toml: plans)")
    link.add_argument("--role", required=True, choices=["owner", "admin"])
    link.add_argument("--email", required=True, help="the user's e-mail registered on the platform")
    link.add_argument("--bot-username", help="the bot's @username (default: BOT_USERNAME)")
    staff = commands.add_parser(
        "staff", help="specialists and leads linked to their Telegram accounts"
    ).add_subparsers(dest="staff_command", required=True)
    staff_link = staff.add_parser(
        "link", help="print a single-use link that links a Telegram account to a queue user"
    )
    staff_link.add_argument("user", help="the specialist's user name in the queue")
    staff_link.add_argument("--role", required=True, choices=["specialist", "lead"])
    staff_link.add_argument("--bot-username", help="the bot's @username (default: BOT_USERNAME)")
    staff.add_parser("list", help="the linked staff: user, role, Telegram id, linked since")
    staff_remove = staff.add_parser("remove", help="unlink a queue user: no staff commands")
    staff_remove.add_argument("user", help="the specialist's user name in the queue")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command is None:  # `python -m bot` alone runs the bot, as the container does
        args = _parser().parse_args(["run"])
    if args.command == "sandbox":  # its own settings: nothing from the environment or .env
        from bot.sandbox.runner import main as sandbox

        sandbox(args.dir or Path.cwd(), host=args.host, port=args.port, reset=args.reset)
        return
    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        if args.command == "migrate":
            asyncio.run(_migrate(settings))
        elif args.command == "outbox":
            asyncio.run(_outbox_retry(settings, args.ticket))
        elif args.command == "link":
            asyncio.run(_link(settings, args))
        elif args.command == "staff":
            asyncio.run(_staff(settings, args))
        elif args.command == "worker":
            _run(settings, webhook=False, worker=True)
        else:
            _run(settings, webhook=args.webhook)
    except (CatalogError, PolicyFileError) as error:
        _stop(settings, f"frontdesk: {error}", error)
    except KeyboardInterrupt:
        pass


def _run(settings: Settings, *, webhook: bool, worker: bool = False) -> None:
    from bot import startup

    try:
        # Everything the bot needs, tried once in order (config, database, Redis, queue,
        # Telegram, port): a failure is one line, before aiogram is even imported where it can.
        asyncio.run(startup.check(settings, webhook=webhook, worker=worker))
        # Imported here: aiogram takes seconds to import, which the other commands skip.
        from bot import app

        if worker:
            asyncio.run(app.run_worker(settings))
        else:
            asyncio.run(app.run_webhook(settings) if webhook else app.run_polling(settings))
    except startup.StartupError as error:
        _stop(settings, f"frontdesk: cannot start: {error}", error)


def _stop(settings: Settings, line: str, error: BaseException) -> NoReturn:
    """One line on stderr and exit code 2; the traceback after it with LOG_LEVEL=DEBUG."""
    print(line, file=sys.stderr)
    if settings.log_level.upper() == "DEBUG":
        traceback.print_exception(error, file=sys.stderr)
    raise SystemExit(2) from None


async def _migrate(settings: Settings) -> None:
    from services.db.engine import create_engine, migrate

    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
    print("frontdesk: database is up to date")


async def _outbox_retry(settings: Settings, ticket_id: int | None) -> None:
    from services import filing, replies, staff_notes
    from services.db.engine import create_engine, create_sessionmaker, migrate

    outboxes = (
        ("filing(s)", filing.retry_refused),
        ("reply(ies)", replies.retry_refused),
        ("staff note(s)", staff_notes.retry_refused),
    )
    engine = create_engine(settings.database_url)
    counts: list[tuple[str, int]] = []
    try:
        await migrate(engine)  # the same schema the bot runs on, whichever started first
        async with create_sessionmaker(engine)() as session:
            for what, retry_refused in outboxes:
                counts.append((what, await retry_refused(session, ticket_id=ticket_id)))
    finally:
        await engine.dispose()
    # A running bot's workers take them at their next round (within seconds).
    for what, count in counts:
        if count or what == "filing(s)":
            print(f"frontdesk: {count} refused {what} re-driven")


async def _link(settings: Settings, args: argparse.Namespace) -> None:
    from bot.api import LinkBody
    from services import links
    from services.db.base import utcnow
    from services.db.engine import create_engine, create_sessionmaker, migrate
    from services.regulation import load_regulation

    username = args.bot_username or settings.bot_username
    if not username:
        print("frontdesk: link: set BOT_USERNAME or pass --bot-username", file=sys.stderr)
        raise SystemExit(2)
    plans = load_regulation(intake=settings.intake).policies.plans
    fields = {
        "store_id": args.store_id,
        "name": args.name,
        "domain": args.domain,
        "plan": args.plan,
        "role": args.role,
        "email": args.email,
    }
    try:
        # The same checks as POST /api/links.
        body = LinkBody.model_validate(fields, context={"plans": plans})
    except ValidationError as error:
        for problem in error.errors():
            name = "--" + "-".join(str(part) for part in problem["loc"]).replace("_", "-")
            message = problem["msg"].removeprefix("Value error, ")
            print(f"frontdesk: link: {name}: {message}", file=sys.stderr)
        raise SystemExit(2) from None
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        async with create_sessionmaker(engine)() as session:
            issued = await links.issue(
                session,
                links.StoreLink(
                    external_id=body.store_id,
                    name=body.name,
                    domain=body.domain,
                    plan=body.plan,
                    role=body.role,
                    email=body.email,
                ),
                ttl=timedelta(seconds=settings.link_ttl_seconds),
                now=utcnow(),
            )
    except links.LinkError:
        print(
            f"frontdesk: link: another store already has the domain {body.domain}", file=sys.stderr
        )
        raise SystemExit(2) from None
    finally:
        await engine.dispose()
    print(links.link_url(username, issued.token))
    print(f"frontdesk: valid once, until {issued.expires_at:%Y-%m-%d %H:%M} UTC", file=sys.stderr)


async def _staff(settings: Settings, args: argparse.Namespace) -> None:
    from services import links, staff
    from services.db.base import utcnow
    from services.db.engine import create_engine, create_sessionmaker, migrate
    from services.db.models import StaffRole

    username: str = getattr(args, "bot_username", None) or settings.bot_username or ""
    if args.staff_command == "link" and not username:
        print("frontdesk: staff link: set BOT_USERNAME or pass --bot-username", file=sys.stderr)
        raise SystemExit(2)
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        async with create_sessionmaker(engine)() as session:
            if args.staff_command == "link":
                issued = await staff.issue_link(
                    session,
                    args.user,
                    StaffRole(args.role),
                    ttl=timedelta(seconds=settings.link_ttl_seconds),
                    now=utcnow(),
                )
                print(links.link_url(username, issued.token))
                print(
                    f"frontdesk: valid once, until {issued.expires_at:%Y-%m-%d %H:%M} UTC",
                    file=sys.stderr,
                )
            elif args.staff_command == "list":
                members = await staff.list_staff(session)
                for member in members:
                    print(
                        f"{member.queue_user}\t{member.role}\t{member.telegram_id}\t"
                        f"{member.since:%Y-%m-%d %H:%M} UTC"
                    )
                if not members:
                    print("frontdesk: no staff linked", file=sys.stderr)
            elif await staff.remove(session, args.user, now=utcnow()):
                print(f"frontdesk: {args.user} removed: staff commands refused from now on")
            else:
                print(
                    f"frontdesk: staff remove: no linked staff member {args.user}", file=sys.stderr
                )
                raise SystemExit(1)
    except staff.StaffError as error:
        print(f"frontdesk: staff link: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        await engine.dispose()
