"""An application whose handlers do real I/O the way application code does: HTTP clients,
timeouts, raw connections, a blocking call, context variables, and an event stream that
awaits in its ``finally``. ``UPSTREAM`` is the base URL of another server the handlers call
(``/hello`` there answers ``{"hello": ...}``)."""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import httpx

from spikard import Spikard
from spikard._aio import live_tasks

app = Spikard()
UPSTREAM = os.environ.get("UPSTREAM", "http://127.0.0.1:1")
HOST, _, PORT = UPSTREAM.removeprefix("http://").partition(":")

request_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("request_id", default=None)
clients: dict[str, Any] = {}
cleanups = {"started": 0, "finished": 0}


@app.on_startup
async def open_clients() -> None:
    clients["httpx"] = httpx.AsyncClient(base_url=UPSTREAM, timeout=10)
    clients["aiohttp"] = aiohttp.ClientSession(base_url=UPSTREAM)


@app.on_shutdown
async def close_clients() -> None:
    await clients["httpx"].aclose()
    await clients["aiohttp"].close()


@app.get("/hello")
def hello(name: str = "world") -> dict:
    return {"hello": name}


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}


@app.get("/task")
async def task() -> dict:
    current = asyncio.current_task()
    return {
        "in_task": current is not None,
        "loop_matches": current is not None and current.get_loop() is asyncio.get_running_loop(),
        "name": current.get_name() if current is not None else None,
    }


@app.get("/all_tasks/{n}")
async def all_tasks(n: int) -> dict:
    """``asyncio.all_tasks()`` sees this handler's task and ``n`` tasks it starts, and the
    registry of live tasks lets go of each once it is freed."""
    registry = live_tasks()
    before = len(registry.data)
    release = asyncio.Event()
    children = [asyncio.create_task(release.wait(), name=f"child-{n}-{i}") for i in range(n)]
    await asyncio.sleep(0)
    listed = [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith(f"child-{n}-")]
    during = len(registry.data)
    release.set()
    await asyncio.gather(*children)
    del children
    # Resumed by gather's future, this step still holds it (and through it the children):
    # one more step, started afresh, holds nothing of them.
    await asyncio.sleep(0)
    return {
        "self_listed": asyncio.current_task() in asyncio.all_tasks(),
        "children_listed": sorted(listed, key=lambda name: int(name.rsplit("-", 1)[1])),
        "added": during - before,
        "left": len(registry.data) - before,
        "native": "add" in vars(registry),
    }


@app.get("/httpx/{n}")
async def with_httpx(n: int) -> dict:
    reply = await clients["httpx"].get("/hello", params={"name": f"x{n}"})
    return {"n": n, "upstream": reply.json()["hello"]}


@app.get("/aiohttp/{n}")
async def with_aiohttp(n: int) -> dict:
    async with clients["aiohttp"].get("/hello", params={"name": f"a{n}"}) as reply:
        body = await reply.json()
    return {"n": n, "upstream": body["hello"]}


@app.get("/timeout/{n}")
async def with_timeout(n: int) -> dict:
    async with asyncio.timeout(1):
        await asyncio.sleep(0.001)
    return {"n": n}


@app.get("/open/{n}")
async def with_open_connection(n: int) -> dict:
    reader, writer = await asyncio.open_connection(HOST, int(PORT))
    writer.write(f"GET /hello?name=o{n} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return {"n": n, "upstream_ok": answer.startswith(b"HTTP/1.1 200") and f'"o{n}"'.encode() in answer}


@app.get("/to_thread/{n}")
async def with_to_thread(n: int) -> dict:
    # The worker thread finishes the future through call_soon_threadsafe.
    doubled = await asyncio.to_thread(lambda: time.sleep(0.005) or n * 2)
    return {"n": n, "doubled": doubled, "in_task": asyncio.current_task() is not None}


@app.get("/sleep", blocking=True)
def sleep() -> dict:
    time.sleep(0.2)
    return {"slept": 0.2}


@app.get("/slow")
def slow() -> dict:
    time.sleep(0.15)
    return {"slept": 0.15}


@app.get("/ctx/{n}")
def ctx(n: int) -> dict:
    seen = request_id.get()
    request_id.set(n)
    return {"seen": seen, "n": n}


@app.get("/actx/{n}")
async def actx(n: int) -> dict:
    seen = request_id.get()
    request_id.set(n)
    await asyncio.sleep(0)
    return {"seen": seen, "n": n, "still": request_id.get()}


@app.get("/callbacks/{n}")
async def callbacks(n: int) -> dict:
    """``loop.call_soon`` as asyncio documents it: callbacks run in order with their
    arguments, a cancelled one never runs, each runs in its context, and one that raises goes
    to the loop's exception handler while the rest still run."""
    loop = asyncio.get_running_loop()
    ran: list[Any] = []
    errors: list[Any] = []

    def on_error(_: asyncio.AbstractEventLoop, details: dict[str, Any]) -> None:
        exc = details["exception"]
        errors.append([type(exc).__name__, str(exc), details["message"].startswith("Exception in callback")])

    def fail() -> None:
        raise ValueError(f"callback {n} failed")

    marked = contextvars.copy_context()
    marked.run(request_id.set, n)
    previous = loop.get_exception_handler()
    loop.set_exception_handler(on_error)
    try:
        done = loop.create_future()
        kept = loop.call_soon(ran.append, ["first", n])
        dropped = loop.call_soon(ran.append, ["dropped", n])
        dropped.cancel()
        loop.call_soon(lambda: ran.append(["context", request_id.get()]), context=marked)
        loop.call_soon(fail)
        loop.call_soon(lambda *numbers: ran.append(["args", sum(numbers)]), *range(n))
        loop.call_soon(ran.append, ["no context given", n], context=None)
        refused = []
        for call in (lambda: loop.call_soon(), lambda: loop.call_soon(ran.append, n, when=n)):
            try:
                call()
            except TypeError as exc:
                refused.append(str(exc))
        loop.call_soon(done.set_result, None)
        await done
    finally:
        loop.set_exception_handler(previous)
    return {
        "ran": ran,
        "errors": errors,
        "refused": refused,
        "cancelled": [kept.cancelled(), dropped.cancelled()],
        "own_context": request_id.get(),
    }


@app.get("/callbacks-debug")
async def callbacks_debug() -> dict:
    """In debug mode asyncio's own ``call_soon`` and its checks apply (a coroutine function is
    refused); after it, callbacks run as before."""
    loop = asyncio.get_running_loop()
    debug = [loop.get_debug()]
    # A future records where it was made only in debug mode (it asks ``loop.get_debug()``).
    traced = [asyncio.Future(loop=loop)._source_traceback is not None]
    loop.set_debug(True)
    try:
        debug.append(loop.get_debug())
        traced.append(asyncio.Future(loop=loop)._source_traceback is not None)
        loop.call_soon(actx, 1)
        refused = None
    except TypeError as exc:
        refused = str(exc)
    finally:
        loop.set_debug(False)
    debug.append(loop.get_debug())
    traced.append(asyncio.Future(loop=loop)._source_traceback is not None)
    done = loop.create_future()
    loop.call_soon(done.set_result, "after")
    return {"refused": refused, "after": await done, "debug": debug, "traced": traced}


@app.get("/callbacks-slow/{n}")
async def callbacks_slow(n: int) -> dict:
    """In debug mode a slow callback is reported by asyncio, also one queued by another
    callback (which the engine's own ready queue would run outside asyncio's timing)."""
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = 0.01
    try:
        done = loop.create_future()
        loop.call_soon(lambda: loop.call_soon(time.sleep, 0.02 + n / 1000))
        loop.call_soon(lambda: loop.call_soon(lambda: loop.call_soon(done.set_result, n)))
        return {"n": await done}
    finally:
        loop.set_debug(False)


@app.get("/stream")
async def stream() -> AsyncIterator[dict]:
    cleanups["started"] += 1
    try:
        for i in range(1_000_000):
            yield {"i": i}
            await asyncio.sleep(0.01)
    finally:
        await asyncio.sleep(0.001)
        cleanups["finished"] += 1


@app.get("/bstream/{n}", blocking=True)
def blocking_stream(n: int) -> Iterator[dict]:
    for i in range(n):
        time.sleep(0.01)
        yield {"i": i, "thread": threading.current_thread().name}


@app.get("/cleanups")
def cleanup_counts() -> dict:
    return dict(cleanups)
