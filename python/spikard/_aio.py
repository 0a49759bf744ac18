"""The process's persistent asyncio loop, for coroutines that really suspend.

Handlers' coroutines are first stepped inline by the engine, with this loop set as the
running loop; only one that suspends is handed here, as a task that continues it from where
it stopped. The loop runs on its own thread, started on first use (so a worker forked before
serving starts with none).
"""

from __future__ import annotations

import asyncio
import threading
import types
from collections.abc import Callable, Coroutine
from typing import Any

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def shared_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="spikard-asyncio", daemon=True)
            thread.start()
            _loop = loop
        return _loop


@types.coroutine
def _continue(coro: Coroutine[Any, Any, Any], yielded: Any):  # type: ignore[no-untyped-def]
    """Hands the task what the coroutine yielded, then keeps driving the coroutine."""
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # noqa: BLE001 - thrown into the coroutine
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value


def resume(coro: Coroutine[Any, Any, Any], yielded: Any, done: Callable[[asyncio.Task[Any]], None]) -> None:
    """Runs on the loop thread: continue ``coro`` as a task; ``done`` gets the finished task."""
    task = asyncio.get_running_loop().create_task(_continue(coro, yielded))
    task.add_done_callback(done)
