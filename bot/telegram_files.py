"""Reading the files merchants sent, from Telegram (the FileSource of services/files.py)."""

from __future__ import annotations

from io import BytesIO

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest

from services.files import MAX_FILE_BYTES, FileRef, FileUnavailable


class TelegramFileSource:
    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def read(self, ref: FileRef) -> bytes:
        if ref.size is not None and ref.size > MAX_FILE_BYTES:
            raise FileUnavailable(f"{ref.filename}: {ref.size} bytes, over the Bot API's 20 MB")
        try:
            file = await self._bot.get_file(ref.file_id)
        except TelegramBadRequest as error:
            # "file is too big" or "wrong file_id": asking again will not help.
            raise FileUnavailable(f"{ref.filename}: {error.message}") from error
        if file.file_path is None:
            raise FileUnavailable(f"{ref.filename}: Telegram gave no path to download")
        buffer = BytesIO()
        await self._bot.download_file(file.file_path, buffer)
        return buffer.getvalue()
