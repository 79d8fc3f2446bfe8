"""Loopback TCP proxies that tests stop and start to simulate an outage of
PostgreSQL or Redis without touching the shared servers, or that cut one
connection at its COMMIT."""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass

# A commit is a simple query ('Q', its length, the text and a NUL byte).
_COMMIT = re.compile(rb"Q....COMMIT;?\x00", re.DOTALL)


@dataclass(eq=False)
class _Link:
    """One proxied connection: the client's end and the server's."""

    client: asyncio.StreamWriter
    server: asyncio.StreamWriter

    def cut(self) -> None:
        for writer in (self.client, self.server):
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Refuse new connections and cut every open one."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update({writer, upstream_writer})
        link = _Link(client=writer, server=upstream_writer)
        for source, to_server in ((reader, True), (upstream_reader, False)):
            task = asyncio.create_task(self._pipe(source, link, to_server))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, reader: asyncio.StreamReader, link: _Link, to_server: bool) -> None:
        sink = link.server if to_server else link.client
        try:
            while data := await reader.read(65536):
                if not self._relayed(data, link, to_server):
                    break
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(sink)
            with contextlib.suppress(OSError, RuntimeError):
                sink.close()

    def _relayed(self, data: bytes, link: _Link, to_server: bool) -> bool:
        """Whether to pass `data` on; a proxy that refuses cuts `link`."""
        return True


class CommitCuttingProxy(TcpProxy):
    """Cuts the next connection that sends COMMIT, either before PostgreSQL
    sees it (the transaction aborts) or once PostgreSQL has answered it (the
    transaction committed, but the client never hears so): an in-doubt
    commit."""

    def __init__(self, target_host: str, target_port: int) -> None:
        super().__init__(target_host, target_port)
        self._armed: bool | None = None
        self._answered: set[_Link] = set()

    def cut_next_commit(self, *, deliver: bool) -> None:
        self._armed = deliver

    def _relayed(self, data: bytes, link: _Link, to_server: bool) -> bool:
        if to_server and self._armed is not None and _COMMIT.search(data):
            deliver, self._armed = self._armed, None
            if deliver:
                self._answered.add(link)
                return True
        elif not to_server and link in self._answered:
            self._answered.discard(link)
        else:
            return True
        link.cut()
        return False
