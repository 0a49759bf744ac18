"""The application: route decorators and serving."""

from __future__ import annotations

import ctypes
import inspect
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from . import _spikard
from ._compile import RegistrationError, compile_handler, path_captures

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_BODY_LIMIT = 2 * 1024 * 1024
DEFAULT_BODY_TIMEOUT = 30.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """Makes this worker get SIGTERM when its parent dies, so that it finishes its in-flight
    requests and exits instead of serving on unsupervised: the kernel's parent-death signal on
    Linux, a thread that watches the parent elsewhere."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    else:

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=watch, name="spikard-parent-watch", daemon=True).start()
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(0)


class Spikard:
    """A Spikard application.

    >>> app = Spikard()
    >>> @app.get("/items/{item_id}")
    ... def get_item(item_id: int, q: str | None = None) -> dict:
    ...     return {"item_id": item_id, "q": q}

    Where handlers run: ``async def`` handlers are asyncio tasks on the worker's own event
    loop, driven by the engine thread. ``def`` handlers run inline on the engine thread — the
    fastest path, right for handlers that compute and return. A ``def`` handler that blocks
    (a blocking database driver, ``time.sleep``, a synchronous HTTP client) would stop every
    other request of its worker meanwhile: declare it ``blocking=True`` (per route, or for
    the whole application here) and it runs on a thread pool of at most
    ``thread_pool_size`` threads. A ``def`` handler that holds the engine thread for
    ``slow_threshold`` seconds or more is logged with its name (timed on the coarse monotonic
    clock, to a few milliseconds).

    A request body must arrive within ``body_timeout`` seconds once its head is in (a slower
    one is answered 408 and its connection closed) and be at most ``body_limit`` bytes (413).

    ``on_startup`` and ``on_shutdown`` callables (plain or ``async``) run in every worker, on
    its event loop: before it accepts its first connection, and after its last request.
    """

    def __init__(
        self,
        *,
        body_limit: int = DEFAULT_BODY_LIMIT,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        blocking: bool = False,
        thread_pool_size: int = 40,
        slow_threshold: float = 0.1,
        on_startup: Sequence[Callable[[], Any]] = (),
        on_shutdown: Sequence[Callable[[], Any]] = (),
    ) -> None:
        if thread_pool_size < 1:
            raise ValueError("thread_pool_size must be at least 1")
        self._app = _spikard.App(body_limit, thread_pool_size, slow_threshold, body_timeout)
        self._blocking = blocking
        self._startup: list[Callable[[], Any]] = list(on_startup)
        self._shutdown: list[Callable[[], Any]] = list(on_shutdown)

    # -- registration -------------------------------------------------------------------

    def _runs_blocking(self, func: Callable[..., Any], blocking: bool | None) -> bool:
        is_async = inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)
        if blocking and is_async:
            name = getattr(func, "__qualname__", repr(func))
            raise RegistrationError(f"handler {name}: blocking=True is for def handlers; this one is async")
        return not is_async and (self._blocking if blocking is None else blocking)

    def route(self, method: str, path: str, *, blocking: bool | None = None) -> Callable[[F], F]:
        """Registers ``func`` for ``method`` and ``path``. ``blocking=True`` runs a ``def``
        handler on the thread pool (default: the application's ``blocking``)."""

        def register(func: F) -> F:
            params, body = compile_handler(func, path)
            event_stream = inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func)
            self._app.add_route(
                method.upper(),
                path,
                func,
                params,
                body,
                inspect.iscoroutinefunction(func),
                self._runs_blocking(func, blocking),
                event_stream,
                getattr(func, "__qualname__", repr(func)),
            )
            return func

        return register

    def get(self, path: str, *, blocking: bool | None = None) -> Callable[[F], F]:
        return self.route("GET", path, blocking=blocking)

    def post(self, path: str, *, blocking: bool | None = None) -> Callable[[F], F]:
        return self.route("POST", path, blocking=blocking)

    def put(self, path: str, *, blocking: bool | None = None) -> Callable[[F], F]:
        return self.route("PUT", path, blocking=blocking)

    def patch(self, path: str, *, blocking: bool | None = None) -> Callable[[F], F]:
        return self.route("PATCH", path, blocking=blocking)

    def delete(self, path: str, *, blocking: bool | None = None) -> Callable[[F], F]:
        return self.route("DELETE", path, blocking=blocking)

    def set_body_timeout(self, seconds: float) -> None:
        """Sets how long a request body may take to arrive once its head is in (before serving)."""
        self._app.set_body_timeout(seconds)

    def on_startup(self, func: F) -> F:
        """Runs ``func`` (plain or ``async``) in each worker before it serves."""
        self._startup.append(func)
        return func

    def on_shutdown(self, func: F) -> F:
        """Runs ``func`` (plain or ``async``) in each worker after its last request."""
        self._shutdown.append(func)
        return func

    def websocket(self, path: str, *, blocking: bool | None = None) -> Callable[[F], F]:
        """A WebSocket route. The handler is called with every text (``str``) or binary
        (``bytes``) message; what it returns (``str``, ``bytes``, or a dict/list sent as JSON
        text) is sent back, ``None`` sends nothing."""

        def register(func: F) -> F:
            name = getattr(func, "__qualname__", repr(func))
            if path_captures(path):
                raise RegistrationError(f"handler {name}: WebSocket paths take no parameters")
            if len(inspect.signature(func).parameters) != 1:
                raise RegistrationError(f"handler {name}: a WebSocket handler takes one argument, the message")
            self._app.add_websocket(
                path, func, inspect.iscoroutinefunction(func), self._runs_blocking(func, blocking), name
            )
            return func

        return register

    @property
    def routes(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every route."""
        return [tuple(r) for r in self._app.endpoints()]  # type: ignore[misc]

    # -- serving ------------------------------------------------------------------------

    def run(self, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
        """Serves until SIGINT or SIGTERM. ``workers`` > 1 forks that many processes that
        share the port (SO_REUSEPORT); each runs its own interpreter and engine thread, and
        stops (after its in-flight requests) when this process dies, even by SIGKILL."""
        if workers <= 1:
            self._app.serve(host, port, False, self._startup, self._shutdown)
            return
        if port == 0:
            raise ValueError("workers > 1 need a fixed port")
        children: list[int] = []
        parent = os.getpid()
        for _ in range(workers):
            pid = os.fork()
            if pid == 0:  # a worker
                code = 0
                try:
                    _die_with_parent(parent)
                    self._app.serve(host, port, True, self._startup, self._shutdown)
                except BaseException as exc:  # noqa: BLE001 - report and exit non-zero
                    print(f"spikard: worker failed: {exc!r}", file=sys.stderr)
                    code = 1
                finally:
                    os._exit(code)
            children.append(pid)

        def forward(signum: int, _frame: Any) -> None:
            for child in children:
                try:
                    os.kill(child, signum)
                except ProcessLookupError:
                    pass

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        failed = False
        for child in children:
            _, status = os.waitpid(child, 0)
            failed |= os.waitstatus_to_exitcode(status) not in (0, -signal.SIGTERM, -signal.SIGINT)
        if failed:
            raise SystemExit(1)

    def _start(self, host: str = "127.0.0.1", port: int = 0) -> Any:
        """Serves on a background thread; returns a handle with ``.port`` and ``.stop()``."""
        return self._app.start(host, port, self._startup, self._shutdown)
