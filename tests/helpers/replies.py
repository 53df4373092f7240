"""Replies as the tests drive them: a file source standing in for Telegram, a reply worker with
a clock the test moves."""

from __future__ import annotations

from datetime import timedelta

from services.files import FileKind, FileRef, FileUnavailable
from services.outbox import RetryPolicy
from services.replies import ReplyWorker


class FakeFiles:
    """Telegram's file storage: ``contents`` by file id; ``failing`` ids fail for now,
    ``gone`` ids for good."""

    def __init__(self) -> None:
        self.contents: dict[str, bytes] = {}
        self.failing: set[str] = set()
        self.gone: set[str] = set()
        self.reads = 0

    def add(self, file_id: str, content: bytes, filename: str, content_type: str) -> FileRef:
        self.contents[file_id] = content
        return FileRef(
            file_id=file_id,
            file_unique_id=f"u-{file_id}",
            kind=FileKind.PHOTO if content_type.startswith("image/") else FileKind.DOCUMENT,
            filename=filename,
            content_type=content_type,
            size=len(content),
        )

    async def read(self, ref: FileRef) -> bytes:
        self.reads += 1
        if ref.file_id in self.gone:
            raise FileUnavailable(ref.filename)
        if ref.file_id in self.failing:
            raise ConnectionError("Telegram did not answer")
        return self.contents[ref.file_id]


def reply_worker(sessionmaker, queue, files, clock=None, **kwargs) -> ReplyWorker:  # type: ignore[no-untyped-def]
    return ReplyWorker(
        sessionmaker,
        queue,
        files,
        retry=RetryPolicy(base=timedelta(seconds=2), cap=timedelta(seconds=60)),
        **({"clock": clock} if clock else {}),
        **kwargs,
    )
