"""`ServerThread`: an ASGI app served by uvicorn in a background thread with its own event loop."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ANY_ADDRESS = ("0.0.0.0", "::", "")  # noqa: S104 - compared with, never bound here


class StartStop:
    """``with`` for what starts and stops: entering starts it (and gives it), leaving stops it."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class ServerTls:
    """HTTPS for a `ServerThread`: uvicorn's ssl_* options, plus the highest TLS version.

    `cert_reqs` ``ssl.CERT_REQUIRED`` with `ca_certs` asks every client for a certificate from
    that CA (mutual TLS). With `maximum_version` TLS 1.2 a refused client certificate fails the
    handshake itself; under TLS 1.3 the client finishes its handshake first and only sees the
    server close the connection when it reads the answer.
    """

    certfile: Path | str
    keyfile: Path | str | None = None
    ca_certs: Path | str | None = None
    cert_reqs: ssl.VerifyMode = ssl.CERT_NONE
    maximum_version: ssl.TLSVersion | None = None

    def context_factory(
        self,
    ) -> Callable[[uvicorn.Config, Callable[[], ssl.SSLContext]], ssl.SSLContext]:
        def factory(
            _config: uvicorn.Config, default: Callable[[], ssl.SSLContext]
        ) -> ssl.SSLContext:
            context = default()
            if self.maximum_version is not None:
                context.maximum_version = self.maximum_version
            return context

        return factory


class ServerThread(StartStop):
    """uvicorn on `host`:`port` (0 picks a free port) in a daemon thread; start, stop, base_url.

        with ServerThread(app) as server:
            httpx.get(f"{server.base_url}/docs")

    The app's lifespan runs in the server's loop (set ``lifespan="off"`` for apps without one);
    a failing start-up makes `start` raise. With `tls` it serves HTTPS (`base_url` says so).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "sandbox",
        lifespan: Literal["on", "off"] = "on",
        shutdown_timeout: int = 2,
        tls: ServerTls | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.name = name
        self._lifespan = lifespan
        self._shutdown_timeout = shutdown_timeout
        self.tls = tls
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def local_url(self) -> str:
        """`base_url`, but ``127.0.0.1`` where it listens on every address (``0.0.0.0``, ``::``)."""
        host = "127.0.0.1" if self.host in _ANY_ADDRESS else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def start(self, timeout: float = 15.0) -> Self:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        # proto=IPPROTO_TCP, or asyncio skips TCP_NODELAY on accepted sockets (proto 0) and every
        # keep-alive answer waits ~40 ms on Nagle + delayed ACK (headers and body are two writes).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        tls = self.tls
        config = uvicorn.Config(
            self.app,
            http="h11",  # a sandbox may cut a connection through h11's request cycle; keep it fixed
            loop="asyncio",
            lifespan=self._lifespan,
            proxy_headers=False,
            access_log=False,
            log_config=None,  # leave the process's logging set-up alone
            log_level="warning",
            timeout_graceful_shutdown=self._shutdown_timeout,
            ssl_certfile=None if tls is None else str(tls.certfile),
            ssl_keyfile=None if tls is None or tls.keyfile is None else str(tls.keyfile),
            ssl_ca_certs=None if tls is None or tls.ca_certs is None else str(tls.ca_certs),
            ssl_cert_reqs=ssl.CERT_NONE if tls is None else tls.cert_reqs,
            ssl_context_factory=None if tls is None else tls.context_factory(),
        )
        self._server = server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=self.name, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise RuntimeError(f"{self.name} did not start on {self.base_url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(self._shutdown_timeout + 10)
        if thread.is_alive():
            server.force_exit = True
            thread.join(5)


@dataclass(frozen=True)
class BodyLimit:
    """A register's request size limit: 413 for a body over `max_bytes`, in the register's words.

    A declared ``Content-Length`` over the limit is answered before the body is read; a body
    without one (chunked) is read up to the limit and answered 413 as soon as it passes it.
    """

    app: ASGIApp
    max_bytes: int
    content_type: str
    body: Callable[[int | None], bytes]  # the register's error body: the size (None: unknown)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, int(declared))
            return
        if declared is not None:
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        size, more = 0, True
        while more:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            more = message["type"] == "http.request" and message.get("more_body", False)
            if size > self.max_bytes:
                await self._refuse(send, None)
                return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, size: int | None) -> None:
        body = self.body(size)
        headers = [
            (b"content-type", self.content_type.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class ServedSandbox(StartStop):
    """Start, stop and ``with`` for a sandbox whose `server` is a `ServerThread`."""

    server: ServerThread

    def start(self) -> Self:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
