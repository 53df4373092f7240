"""A loopback TCP proxy the test controls, put between the bot and a shared server (PostgreSQL,
Redis) to simulate the server restarting without touching it: `restart()` cuts every connection
and refuses new ones for a while (the listening socket is closed: connection refused, as a
stopped server answers), then accepts again on the same port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit, urlunsplit


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.connections_accepted = 0
        self.connections_cut = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def for_url(cls, url: str) -> TcpProxy:
        parts = urlsplit(url)
        assert parts.hostname and parts.port, url
        return cls(parts.hostname, parts.port)

    def url(self, url: str) -> str:
        """`url` with its host and port replaced by the proxy's (credentials and path kept)."""
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = (credentials + "@" if credentials else "") + f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    async def __aenter__(self) -> Self:
        await self.accept()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.refuse()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def accepting(self) -> bool:
        return self._server is not None

    @property
    def open_connections(self) -> int:
        return len(self._pipes)

    async def accept(self) -> None:
        """Listens (again, on the same port once it has one)."""
        if self._server is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._serve, sock=sock)

    async def refuse(self) -> None:
        """Cuts every connection and refuses new ones (the server is down)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for client, upstream in list(self._pipes):
            self.connections_cut += 1
            for writer in (client, upstream):
                writer.transport.abort()
        self._pipes.clear()

    async def restart(self, outage: float) -> None:
        """A server restart: everything cut, refused for `outage` seconds, then accepted."""
        await self.refuse()
        await asyncio.sleep(outage)
        await self.accept()

    async def _serve(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        try:
            upstream_reader, upstream = await asyncio.open_connection(*self.upstream)
        except OSError:
            client.transport.abort()
            return
        if self._server is None:  # refused while connecting upstream
            client.transport.abort()
            upstream.transport.abort()
            return
        self.connections_accepted += 1
        pipe = (client, upstream)
        self._pipes.add(pipe)
        pumps = [
            asyncio.create_task(self._pump(client_reader, upstream)),
            asyncio.create_task(self._pump(upstream_reader, client)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._tasks.difference_update(pumps)
            self._pipes.discard(pipe)
            for writer in pipe:
                writer.transport.abort()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
