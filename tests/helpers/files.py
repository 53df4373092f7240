"""Files the merchant sent, as the tests hand them to the filing worker: an in-memory stand-in
for Telegram's copies (the FileSource port of services/files.py). In e2e tests the real bot reads
them from the Bot API emulator instead."""

from __future__ import annotations

from services.files import FileKind, FileRef, FileUnavailable


class InMemoryFileSource:
    """Telegram's file storage, in memory: `gone` files can never be read again (deleted, or
    over the Bot API's limit); while `failing`, every read fails as a network error would."""

    def __init__(self) -> None:
        self.contents: dict[str, bytes] = {}
        self.gone: set[str] = set()
        self.failing = False
        self.reads = 0

    def add(
        self,
        content: bytes,
        filename: str,
        *,
        kind: FileKind = FileKind.DOCUMENT,
        content_type: str = "application/octet-stream",
    ) -> FileRef:
        number = len(self.contents) + 1
        ref = FileRef(
            file_id=f"file-{number}",
            file_unique_id=f"unique-{number}",
            kind=kind,
            filename=filename,
            content_type=content_type,
            size=len(content),
        )
        self.contents[ref.file_id] = content
        return ref

    async def read(self, ref: FileRef) -> bytes:
        self.reads += 1
        if self.failing:
            raise ConnectionError("api.telegram.org: connection reset")
        if ref.file_id in self.gone or ref.file_id not in self.contents:
            raise FileUnavailable(f"{ref.filename}: Bad Request: wrong file_id")
        return self.contents[ref.file_id]
