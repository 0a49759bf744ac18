"""The engine side of spikard (a Rust extension module)."""

from collections.abc import Awaitable, Callable, Iterable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Self, final

from typing_extensions import disjoint_base

@final
class App:
    def __new__(
        cls, body_limit: int = ..., thread_pool_size: int = ..., slow_threshold: float = ..., body_timeout: float = ...
    ) -> App: ...
    def set_body_timeout(self, seconds: float) -> None: ...
    def add_route(
        self,
        method: str,
        path: str,
        func: Callable[..., Any],
        params: list[tuple[Any, ...]],
        body: tuple[int, Any, bool] | None,
        is_async: bool,
        blocking: bool,
        event_stream: bool,
        name: str,
    ) -> None: ...
    def add_websocket(self, path: str, func: Callable[..., Any], is_async: bool, blocking: bool, name: str) -> None: ...
    def endpoints(self) -> list[tuple[str, str]]: ...
    def serve(
        self,
        host: str,
        port: int,
        reuse_port: bool = False,
        startup: list[Callable[[], Any]] | None = None,
        shutdown: list[Callable[[], Any]] | None = None,
    ) -> None: ...
    def start(
        self,
        host: str = ...,
        port: int = ...,
        startup: list[Callable[[], Any]] | None = None,
        shutdown: list[Callable[[], Any]] | None = None,
    ) -> ServerHandle: ...

@final
class ServerHandle:
    @property
    def port(self) -> int: ...
    def stop(self) -> None: ...

@final
class Response:
    """``Response(content=None, status=200, headers=None, media_type=None)``: an answer with a
    chosen status, headers and content type. ``content`` is encoded like a plain return value
    (dict/list/Struct as JSON, str as text, bytes as octet-stream) unless ``media_type`` says
    otherwise."""

    def __new__(
        cls,
        content: Any = None,
        status: int = 200,
        headers: dict[str, str] | None = None,
        media_type: str | None = None,
    ) -> Response: ...
    @property
    def content(self) -> Any: ...
    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> dict[str, str]: ...
    @property
    def media_type(self) -> str | None: ...

@final
class Event:
    """``Event(data, event=None, id=None)``: one server-sent event; ``data`` that is not a
    str is sent as JSON."""

    def __new__(cls, data: Any, event: str | None = None, id: str | None = None) -> Event: ...
    @property
    def data(self) -> Any: ...
    @property
    def event(self) -> str | None: ...
    @property
    def id(self) -> str | None: ...

@final
class UploadFile:
    """``UploadFile(filename, content_type, data)``: a file received in a
    ``multipart/form-data`` body: its name and content type as the client sent them, and its
    bytes. ``data`` and ``read()`` give them as ``bytes``, made on first use; ``view`` (or
    ``memoryview(file)``, or the file itself given to anything that takes a buffer:
    ``hashlib``, ``zlib.crc32``, a file's ``write``) reads them where the request put them,
    without a copy."""

    def __new__(cls, filename: str, content_type: str, data: bytes) -> UploadFile: ...
    @property
    def filename(self) -> str: ...
    @property
    def content_type(self) -> str: ...
    @property
    def data(self) -> bytes: ...
    @property
    def view(self) -> memoryview: ...
    @property
    def size(self) -> int: ...
    def read(self) -> bytes: ...
    def __reduce__(self) -> tuple[type[UploadFile], tuple[str, str, bytes]]: ...

@final
class Completion:
    def __call__(self, task: Any) -> None: ...

@final
class Handle:
    """A callback queued by :class:`CallSoon`, with :class:`asyncio.Handle`'s behaviour."""

    @property
    def _cancelled(self) -> bool: ...
    @property
    def _callback(self) -> Any: ...
    @property
    def _args(self) -> tuple[Any, ...] | None: ...
    @property
    def _loop(self) -> Any: ...
    def cancel(self) -> None: ...
    def cancelled(self) -> bool: ...
    def get_context(self) -> Any: ...
    def _run(self) -> None: ...

@final
class CallSoon:
    """``loop.call_soon`` for the engine loop: queues a :class:`Handle` on ``ready``."""

    def __new__(cls, event_loop: Any, ready: Any) -> CallSoon: ...
    @property
    def call_soon(self) -> Callable[..., Handle]:
        """``call_soon(callback, *args, context=None)``, a builtin function bound to this object."""

def drain(ready: Any, budget: int) -> None:
    """Runs up to ``budget`` handles from the front of the ``ready`` deque."""

@final
class TaskSet:
    """``add`` and the removal callback of one :class:`weakref.WeakSet`, without a Python frame."""

    def __new__(cls, set: Any) -> TaskSet: ...
    def add(self, item: Any) -> None:
        """``WeakSet.add``: a weak reference to ``item`` whose callback is :meth:`remove`."""
    def remove(self, reference: Any) -> None:
        """The weak references' callback: ``reference``'s object is gone."""

@disjoint_base
class PgPool:
    """The engine side of :class:`spikard.postgres.Pool`."""

    def __new__(
        cls, dsn: str, *, max_size: int = 10, connect_timeout: float = 5.0, acquire_timeout: float = 5.0
    ) -> Self: ...
    def fetch(self, query: str, *args: Any) -> Awaitable[list[tuple[Any, ...]]]: ...
    def fetchrow(self, query: str, *args: Any) -> Awaitable[tuple[Any, ...] | None]: ...
    def fetchval(self, query: str, *args: Any, column: int = 0) -> Awaitable[Any]: ...
    def execute(self, query: str, *args: Any) -> Awaitable[int]: ...
    def fetchmany(self, query: str, args: Iterable[Sequence[Any]]) -> Awaitable[list[tuple[Any, ...]]]: ...
    def executemany(self, query: str, args: Iterable[Sequence[Any]]) -> Awaitable[int]: ...
    def acquire(self) -> Acquired:
        """``async with pool.acquire() as conn``: one connection for several statements, given
        back when the block ends."""
    def _acquire(self) -> Awaitable[Connection]: ...
    def _close(self) -> None: ...
    @property
    def max_size(self) -> int: ...
    @property
    def closed(self) -> bool: ...

@final
class Connection:
    """One connection taken from a :class:`spikard.postgres.Pool`, until :meth:`release`."""

    def fetch(self, query: str, *args: Any) -> Awaitable[list[tuple[Any, ...]]]: ...
    def fetchrow(self, query: str, *args: Any) -> Awaitable[tuple[Any, ...] | None]: ...
    def fetchval(self, query: str, *args: Any, column: int = 0) -> Awaitable[Any]: ...
    def execute(self, query: str, *args: Any) -> Awaitable[int]: ...
    def fetchmany(self, query: str, args: Iterable[Sequence[Any]]) -> Awaitable[list[tuple[Any, ...]]]: ...
    def executemany(self, query: str, args: Iterable[Sequence[Any]]) -> Awaitable[int]: ...
    def transaction(self) -> Transaction: ...
    def release(self) -> None: ...
    @property
    def in_transaction(self) -> bool: ...
    @property
    def released(self) -> bool: ...

@final
class Acquired:
    """``async with pool.acquire() as conn``: one connection of the pool for the block."""

    def __aenter__(self) -> Awaitable[Connection]: ...
    def __aexit__(self, _exc_type: Any, _exc: Any, _traceback: Any) -> Awaitable[None]: ...

@final
class Transaction:
    """``async with conn.transaction():`` ``BEGIN``, then ``COMMIT`` (``ROLLBACK`` when the
    block raises)."""

    def __aenter__(self) -> Awaitable[Connection]: ...
    def __aexit__(self, exc_type: Any, _exc: Any, _traceback: Any) -> Awaitable[None]: ...

def _settle(future: Any, value: Any, error: Any) -> None: ...

class TemplateError(Exception):
    """A template that could not be read, parsed or rendered."""

class TemplateNotFound(TemplateError):
    """No template of that name in the templates' directory."""

@final
class Templates:
    """``Templates(directory)``: the Jinja templates in ``directory``, rendered by MiniJinja."""

    def __new__(cls, directory: str | PathLike[str]) -> Templates: ...
    @property
    def directory(self) -> Path: ...
    def render(self, name: str, context: dict[str, Any] | None = None, /, **values: Any) -> str:
        """The template ``name`` rendered with ``context`` and ``values`` (which win), as a str."""
    def response(
        self,
        name: str,
        context: dict[str, Any] | None = None,
        /,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        media_type: str | None = None,
    ) -> Response:
        """A :class:`Response` of the rendered template, ``text/html; charset=utf-8`` unless
        ``media_type`` says otherwise."""
