"""The asyncio loop of an engine thread.

Each thread that serves (one per worker process) owns one asyncio loop, and that same thread
drives it: the engine's tokio runtime waits on the loop's selector, its next timer and its
ready queue, and runs one non-blocking iteration when any of them calls. So every
``async def`` handler runs as a real :class:`asyncio.Task` on the loop of the thread that owns
its connection: ``asyncio.current_task()`` is set from its first line, ``asyncio.timeout``,
httpx, aiohttp and asyncpg work, and no loop is touched from another thread.

A new request's task is created and its first step run on the spot (as Python 3.12's eager
tasks do), so a handler that never suspends is answered without waking anything else.

``call_soon`` and the ready queue are the extension's (``_spikard.CallSoon`` and
``_spikard.drain``): the handles they queue and run behave as :class:`asyncio.Handle`, without
a Python frame per callback; ``create_future`` and ``create_task`` call the classes directly.
In debug mode asyncio's own methods, its own loop passes and their checks apply. asyncio's
set of live tasks gains and loses its members through ``_spikard.TaskSet``, without
``WeakSet.add`` and its removal callback running as Python frames for every task.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import selectors
import threading
import weakref
from asyncio import selector_events
from collections.abc import AsyncGenerator, Callable
from typing import Any

from ._spikard import CallSoon, TaskSet, drain

#: Returned by :meth:`EngineLoop.iterate` when the loop waits only on I/O.
IDLE = -1.0

#: Loop methods an engine loop replaces (:meth:`EngineLoop._use_fast_paths`).
_FAST_PATHS = ("call_soon", "create_future", "create_task", "get_debug")

#: Callbacks one :meth:`EngineLoop.iterate` may run while callbacks keep queueing others,
#: before the engine serves its connections again (in debug mode: loop passes).
_BUDGET = 64
_DEBUG_PASSES = 16

#: What :func:`next_item` returns after a stream's last item.
END = object()


def live_tasks() -> Any:
    """asyncio's set of live tasks: the ``weakref.WeakSet`` every ``asyncio.Task`` adds itself
    to and ``asyncio.all_tasks()`` reads (``_all_tasks`` on 3.11, ``_scheduled_tasks`` from
    3.12), or None where this CPython has no such set."""
    tasks = getattr(asyncio.tasks, "_scheduled_tasks", None)
    if tasks is None:
        tasks = getattr(asyncio.tasks, "_all_tasks", None)
    return tasks if type(tasks) is weakref.WeakSet else None


def _register_tasks_natively() -> None:
    """Gives :func:`live_tasks` an ``add`` of the extension's, on that one instance, once per
    process. Its members, its iteration and its pending removals stay those of a ``WeakSet``;
    only the two Python frames per task go."""
    tasks = live_tasks()
    if tasks is not None and "add" not in vars(tasks):
        vars(tasks)["add"] = TaskSet(tasks).add


class _Selector(selectors.EpollSelector):
    """An epoll selector that never blocks: the engine waits on its file descriptor instead,
    and only polls it when the engine saw it readable (``poll_next``)."""

    def __init__(self) -> None:
        super().__init__()
        #: Set while the engine drives the loop; before and after, it blocks as usual (so
        #: start-up and shut-down hooks can run with ``run_until_complete``).
        self.engine_driven = False
        self.poll_next = True

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if not self.engine_driven:
            return super().select(timeout)
        if not self.poll_next:
            return []
        self.poll_next = False
        return super().select(0)


class _SocketTransport(selector_events._SelectorSocketTransport):
    """The selector loop's socket transport, reading at most 64 KiB at a time: its default of
    256 KiB is above malloc's mmap threshold, so every read of a few bytes (a database reply)
    mapped, shrank and unmapped a fresh 256 KiB buffer — three system calls and page faults
    per read."""

    max_size = 64 * 1024


class EngineLoop(asyncio.SelectorEventLoop):
    """An asyncio loop iterated by the engine's thread, one non-blocking step at a time."""

    def __init__(self) -> None:
        _register_tasks_natively()
        self._engine_selector = _Selector()
        super().__init__(self._engine_selector)
        #: Tasks that suspended, held until done (the engine adds them, and its done callback
        #: discards them): the loop itself keeps only weak references to tasks.
        self._pending: set[asyncio.Task[Any]] = set()
        #: The loop methods this instance replaces with equivalents that run no Python frame
        #: of their own (see :meth:`_use_fast_paths`).
        self._fast_paths: dict[str, Callable[..., Any]] | None = {
            "call_soon": CallSoon(self, self._ready).call_soon,
            "create_future": functools.partial(asyncio.Future, loop=self),
            "create_task": functools.partial(asyncio.Task, loop=self),
            # Installed only while the loop is not in debug mode, so the answer is False:
            # ``bool()`` gives it without a Python frame. Every asyncio Future and Task asks
            # (``loop.get_debug()`` in their ``__init__``).
            "get_debug": bool,
        }
        self._use_fast_paths()

    def _use_fast_paths(self) -> None:
        """Installs the fast ``call_soon`` (the extension's), ``create_future`` and
        ``create_task`` (the classes themselves) and ``get_debug`` as this instance's
        attributes, or removes them: asyncio's own methods apply in debug mode (their checks),
        once closed (their error), and ``create_task`` with a task factory."""
        fast = getattr(self, "_fast_paths", None)
        # ``_debug``, not ``get_debug()``: the fast ``get_debug`` answers False.
        if self._debug or self.is_closed():
            fast = None
        for name in _FAST_PATHS:
            if fast is not None and (name != "create_task" or self.get_task_factory() is None):
                self.__dict__[name] = fast[name]
            else:
                self.__dict__.pop(name, None)

    def set_debug(self, enabled: bool) -> None:
        super().set_debug(enabled)
        self._use_fast_paths()

    def set_task_factory(self, factory: Any) -> None:
        super().set_task_factory(factory)
        self._use_fast_paths()

    def close(self) -> None:
        # Also ends the reference cycles loop -> fast path -> loop.
        self._fast_paths = None
        self._use_fast_paths()
        super().close()

    def _make_socket_transport(  # type: ignore[override]
        self,
        sock: Any,
        protocol: Any,
        waiter: Any = None,
        *,
        extra: Any = None,
        server: Any = None,
    ) -> Any:
        return _SocketTransport(self, sock, protocol, waiter, extra, server)

    def fileno(self) -> int:
        """The epoll descriptor the engine waits on for I/O readiness."""
        return self._engine_selector.fileno()

    def attach(self) -> None:
        """Makes this loop the running loop of the calling thread, for good (until
        :meth:`detach`): coroutines stepped here see it as ``asyncio.get_running_loop()``."""
        self._check_closed()
        self._engine_selector.engine_driven = True
        self._thread_id = threading.get_ident()
        asyncio.events._set_running_loop(self)

    def detach(self) -> None:
        self._engine_selector.engine_driven = False
        self._thread_id = None
        asyncio.events._set_running_loop(None)

    def shut_down(self, hooks: list[Callable[[], Any]]) -> None:
        """After the last request (the engine no longer drives the loop): runs the shut-down
        hooks, cancels the tasks still pending (as ``asyncio.run`` does), finishes async
        generators and the default executor, and closes the loop."""
        self.detach()
        try:
            self.run_until_complete(run_hooks(hooks))
        finally:
            pending = [task for task in asyncio.all_tasks(self) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                self.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.run_until_complete(self.shutdown_asyncgens())
            self.run_until_complete(self.shutdown_default_executor())
            self.close()

    def iterate(self, poll: bool) -> float:
        """Runs the callbacks that are due (polling the selector first when ``poll``) and
        says when the loop next has work: 0.0 at once, seconds until its next timer, or
        :data:`IDLE` when only I/O can wake it."""
        if poll:
            self._engine_selector.poll_next = True
        self._run_once()
        # Callbacks that queue callbacks (a task resumed by a future it awaited) run in the
        # same call, up to a bound that keeps the engine's own connections served; in debug
        # mode each pass is asyncio's own, which warns of slow callbacks.
        if self._debug:
            for _ in range(_DEBUG_PASSES):
                if not self._ready:
                    break
                self._run_once()
        elif self._ready:
            drain(self._ready, _BUDGET)
        if self._ready:
            return 0.0
        if self._scheduled:
            return max(0.0, self._scheduled[0].when() - self.time())
        return IDLE


async def run_hooks(hooks: list[Callable[[], Any]]) -> None:
    """Calls start-up or shut-down hooks in order, awaiting those that return awaitables."""
    for hook in hooks:
        result = hook()
        if inspect.isawaitable(result):
            await result


async def close_stream(stream: AsyncGenerator[Any, None], pending: asyncio.Task[Any] | None) -> None:
    """Closes an event stream whose client went away: cancels the step in flight, then
    ``aclose()``, so ``finally`` blocks that await run."""
    if pending is not None and not pending.done():
        pending.cancel()
        try:
            await pending
        except BaseException:  # noqa: BLE001, S110 - the stream is being closed either way
            pass
    await stream.aclose()


async def next_item(stream: AsyncGenerator[Any, None]) -> Any:
    """The next item of an async generator, or :data:`END`."""
    try:
        return await stream.__anext__()
    except StopAsyncIteration:
        return END
