"""`frontdesk` command line: run (polling or webhook), migrate, outbox retry."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from pydantic import ValidationError

from bot.config import Settings
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
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command is None:  # `python -m bot` alone runs the bot, as the container does
        args = _parser().parse_args(["run"])
    settings = _settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "migrate":
            asyncio.run(_migrate(settings))
        elif args.command == "outbox":
            asyncio.run(_outbox_retry(settings, args.ticket))
        else:
            from bot import app  # here: importing aiogram takes seconds the commands above skip

            asyncio.run(app.run_webhook(settings) if args.webhook else app.run_polling(settings))
    except (CatalogError, PolicyFileError) as error:
        print(f"frontdesk: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        pass


async def _migrate(settings: Settings) -> None:
    from services.db.engine import create_engine, migrate

    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
    print("frontdesk: database is up to date")


async def _outbox_retry(settings: Settings, ticket_id: int | None) -> None:
    from services import replies
    from services.db.engine import create_engine, create_sessionmaker, migrate
    from services.filing import retry_refused

    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)  # the same schema the bot runs on, whichever started first
        async with create_sessionmaker(engine)() as session:
            count = await retry_refused(session, ticket_id=ticket_id)
            replies_count = await replies.retry_refused(session, ticket_id=ticket_id)
    finally:
        await engine.dispose()
    # A running bot's workers take them at their next round (within seconds).
    print(f"frontdesk: {count} refused filing(s) re-driven")
    if replies_count:
        print(f"frontdesk: {replies_count} refused reply(ies) re-driven")
