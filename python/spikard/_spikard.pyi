"""The engine side of spikard (a Rust extension module)."""

from collections.abc import Callable
from typing import Any, final

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
    def __call__(self, callback: Any, *args: Any, context: Any = None) -> Handle: ...

def drain(ready: Any, budget: int) -> None:
    """Runs up to ``budget`` handles from the front of the ``ready`` deque."""
