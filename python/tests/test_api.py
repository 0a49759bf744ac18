"""The Python API itself: parameter types and markers, body types, return types, sync and
async handlers, concurrency, exceptions, SSE, WebSocket, workers and registration errors."""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import datetime
import hashlib
import json
import os
import pickle
import random
import subprocess
import sys
import threading
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Literal, Optional, TypedDict

import msgspec
import pytest
from websockets.sync.client import connect

from conftest import ROOT, free_port, start_server, stop_server, wait_ready
from http_util import send
from spikard import Body, Event, Form, Header, Query, RegistrationError, Response, Spikard, TestClient, UploadFile


@dataclasses.dataclass
class Point:
    x: int
    y: float


class Person(TypedDict):
    name: str
    age: int


class Pet(msgspec.Struct):
    name: str
    legs: int = 4


def make_app() -> Spikard:
    app = Spikard()

    @app.get("/types/{i}/{f}/{b}/{u}/{d}")
    def types(i: int, f: float, b: bool, u: uuid.UUID, d: datetime.date) -> dict:
        assert isinstance(u, uuid.UUID) and isinstance(d, datetime.date)
        return {"i": i, "f": f, "b": b, "u": str(u), "d": d.isoformat(), "kinds": [type(v).__name__ for v in (i, f, b)]}

    @app.get("/query")
    def query(
        when: datetime.datetime,
        ids: list[int] = [],  # noqa: B006
        csv: Annotated[list[str], Query(csv=True)] = [],  # noqa: B006
        mode: Literal["a", "b"] = "a",
        maybe: Optional[int] = None,
        renamed: Annotated[str, Query(alias="other-name")] = "dflt",
    ) -> dict:
        return {"when": when.isoformat(), "ids": ids, "csv": csv, "mode": mode, "maybe": maybe, "renamed": renamed}

    @app.get("/echo/{u}/{d}")
    def echo_values(u: uuid.UUID, d: datetime.date, when: datetime.datetime, micro: int = 0) -> dict:
        naive = when.replace(tzinfo=None, microsecond=micro)
        return {
            "u": u,
            "d": d,
            "naive": naive,
            "aware": when,
            "time": naive.time(),
            "local": naive.time().replace(tzinfo=datetime.timezone(datetime.timedelta(hours=-3))),
            "nested": [(d, u)],
        }

    @app.get("/header")
    def header(x_token: Annotated[str, Header()], x_count: int = Header(0)) -> dict:
        return {"token": x_token, "count": x_count}

    @app.post("/form")
    def form(name: str = Form(), tags: list[str] = Form([])) -> dict:  # noqa: B006
        return {"name": name, "tags": tags}

    @app.post("/upload")
    def upload(file: UploadFile, note: str = Form("none")) -> dict:
        return {
            "name": file.filename,
            "type": file.content_type,
            "size": file.size,
            "note": note,
            "head": file.read()[:3].decode(),
            "exact_type": type(file) is UploadFile and type(file.data) is bytes,
            "repr": repr(file),
            "copy": repr(pickle.loads(pickle.dumps(file))),
        }

    @app.post("/upload/digest")
    def upload_digest(file: UploadFile) -> dict:
        view = file.view
        return {
            "size": file.size,
            "view": [type(view) is memoryview, view.readonly, len(view), view.nbytes],
            "sha256": hashlib.sha256(file).hexdigest(),
            "crc32": zlib.crc32(view),
            "same_bytes": file.data is file.read() and bytes(view) == file.data == bytes(file),
            "writable": _writable(file),
        }

    @app.post("/body/dict")
    def body_dict(body: dict) -> dict:
        return {"keys": sorted(body)}

    @app.post("/body/list")
    def body_list(items: list) -> list:
        return list(reversed(items))

    @app.post("/body/dataclass")
    def body_dataclass(p: Point) -> Point:
        assert isinstance(p, Point)
        return Point(p.x * 2, p.y * 2)

    @app.post("/body/typeddict")
    def body_typeddict(person: Person) -> dict:
        return {"greeting": f"hi {person['name']}", "next": person["age"] + 1}

    @app.post("/body/struct/{owner}")
    def body_struct(owner: str, pet: Pet) -> dict:
        return {"owner": owner, "pet": pet}

    @app.post("/body/raw")
    def body_raw(data: Annotated[bytes, Body()]) -> bytes:
        return data[::-1]

    @app.get("/returns/{kind}")
    def returns(kind: str):  # noqa: ANN201 - many return types
        return {
            "str": "plain text",
            "bytes": b"\x00\x01",
            "none": None,
            "list": [1, "two", 3.5, None, True],
            "struct": Pet("rex", 3),
            "dataclass": Point(1, 2.5),
            "response": Response({"made": True}, status=201, headers={"x-extra": "yes"}),
            "html": Response("<b>hi</b>", media_type="text/html"),
            "nested": {"when": datetime.date(2024, 5, 6), "id": uuid.UUID(int=1), "pet": Pet("a")},
        }[kind]

    @app.post("/text/{times}")
    def text_back(times: int, text: Annotated[str, Form()], html: bool = False) -> str | Response:
        page = text * times
        return Response(page, media_type="text/html; charset=utf-8") if html else page

    @app.get("/text/surrogate")
    def surrogate() -> str:
        return "half a pair: \ud83d"

    @app.get("/async/{n}")
    async def async_plain(n: int) -> dict:
        return {"n": n * 2}

    @app.get("/async-sleep")
    async def async_sleep(ms: int) -> dict:
        await asyncio.sleep(ms / 1000)
        task = asyncio.ensure_future(asyncio.sleep(0, result="inner"))
        return {"slept": ms, "task": await task}

    waiting = {"count": 0}
    cond_holder: dict = {}

    @app.get("/barrier")
    async def barrier(n: int) -> dict:
        # Each request waits until n requests are waiting at once: only concurrent awaiting passes.
        cond = cond_holder.setdefault("cond", asyncio.Condition())
        async with cond:
            waiting["count"] += 1
            cond.notify_all()
            try:
                await asyncio.wait_for(cond.wait_for(lambda: waiting["count"] >= n), timeout=10)
            except TimeoutError:
                return {"ok": False}
        return {"ok": True}

    @app.get("/raise")
    def raises() -> dict:
        raise ValueError("boom")

    @app.get("/async-raise")
    async def async_raises() -> dict:
        await asyncio.sleep(0.001)
        raise KeyError("late boom")

    @app.get("/events")
    def events(n: int):  # noqa: ANN201
        for i in range(n):
            yield {"i": i} if i % 2 else Event(f"line {i}", event="text", id=str(i))

    @app.get("/events-then-fail")
    def events_then_fail(n: int):  # noqa: ANN201
        for i in range(n):
            yield Event({"i": i, "pad": "x" * (i % 7) * 300}, id=str(i))
        yield Event(b"cannot be JSON")
        yield "never sent"

    @app.get("/event-kinds")
    def event_kinds(n: int):  # noqa: ANN201
        yield Event({"n": n, "half": n / 2}, event="record")
        yield Event(f"first {n}\r\nsecond", id=f"id-{n}")
        yield Event(b"cannot be JSON")
        yield "never sent"

    @app.get("/aevents")
    async def aevents(n: int):  # noqa: ANN201
        for i in range(n):
            await asyncio.sleep(0)
            yield f"a{i}"

    @app.websocket("/ws/upper")
    def upper(message: str | bytes):  # noqa: ANN201
        return message.upper() if isinstance(message, str) else bytes(reversed(message))

    @app.websocket("/ws/async")
    async def ws_async(message: str | bytes) -> dict:
        await asyncio.sleep(0)
        return {"len": len(message)}

    return app


@pytest.fixture(scope="module")
def client():  # noqa: ANN201
    with TestClient(make_app()) as c:
        yield c


def test_path_parameter_types(client: TestClient) -> None:
    u = uuid.uuid4()
    body = client.get(f"/types/-4/2.5/true/{u}/2024-03-01").json()
    assert body == {"i": -4, "f": 2.5, "b": True, "u": str(u), "d": "2024-03-01", "kinds": ["int", "float", "bool"]}
    assert client.get(f"/types/x/y/maybe/{u}/2024-03-01").status_code == 422


def test_query_types_lists_enums_aliases(client: TestClient) -> None:
    body = client.get("/query?when=2024-01-02T03:04:05Z&ids=1&ids=2&csv=a,b&mode=b&maybe=7&other-name=r").json()
    assert body == {
        "when": "2024-01-02T03:04:05+00:00",
        "ids": [1, 2],
        "csv": ["a", "b"],
        "mode": "b",
        "maybe": 7,
        "renamed": "r",
    }
    body = client.get("/query?when=2024-01-02T03:04:05").json()
    assert body["ids"] == [] and body["mode"] == "a" and body["maybe"] is None and body["renamed"] == "dflt"
    errors = client.get("/query?ids=x&mode=c").json()["errors"]
    assert [e["loc"] for e in errors] == [["query", "when"], ["query", "ids", 0], ["query", "mode"]]


def test_answers_write_uuids_dates_and_times_as_str_and_isoformat(client: TestClient) -> None:
    rng = random.Random(1208)
    for _ in range(30):
        u = uuid.UUID(int=rng.getrandbits(128))
        d = datetime.date.fromordinal(rng.randrange(1, datetime.date.max.toordinal() + 1))
        offset = datetime.timezone(datetime.timedelta(minutes=rng.randrange(-720, 720)))
        when = datetime.datetime(rng.randrange(1, 10_000), rng.randrange(1, 13), rng.randrange(1, 29), tzinfo=offset)
        when += datetime.timedelta(seconds=rng.randrange(86_400))
        micro = rng.choice([0, rng.randrange(1, 1_000_000)])
        naive = when.replace(tzinfo=None, microsecond=micro)
        local = naive.time().replace(tzinfo=datetime.timezone(datetime.timedelta(hours=-3)))
        reply = client.get(f"/echo/{u}/{d.isoformat()}", params={"when": when.isoformat(), "micro": micro})
        assert reply.status_code == 200, reply.text
        assert reply.json() == {
            "u": str(u),
            "d": d.isoformat(),
            "naive": naive.isoformat(),
            "aware": when.isoformat(),
            "time": naive.time().isoformat(),
            "local": local.isoformat(),
            "nested": [[d.isoformat(), str(u)]],
        }


def test_headers(client: TestClient) -> None:
    assert client.get("/header", headers={"X-Token": "t1", "X-Count": "3"}).json() == {"token": "t1", "count": 3}
    assert client.get("/header", headers={"X-Token": "t2"}).json() == {"token": "t2", "count": 0}
    assert client.get("/header").json()["errors"][0]["loc"] == ["header", "x_token"]


def test_forms_and_uploads(client: TestClient) -> None:
    assert client.post("/form", data={"name": "n", "tags": ["a", "b"]}).json() == {"name": "n", "tags": ["a", "b"]}
    assert client.post("/form", data={"name": "m"}, files={}).json() == {"name": "m", "tags": []}
    reply = client.post("/upload", files={"file": ("f.txt", b"abcdef", "text/plain")}, data={"note": "hey"})
    assert reply.json() == {
        "name": "f.txt",
        "type": "text/plain",
        "size": 6,
        "note": "hey",
        "head": "abc",
        "exact_type": True,
        "repr": "UploadFile(filename='f.txt', content_type='text/plain', size=6)",
        "copy": "UploadFile(filename='f.txt', content_type='text/plain', size=6)",
    }
    reply = client.post("/upload", files={"file": ("g.csv", b"x,y\n1,2\n", "text/csv")})
    assert reply.json()["repr"] == "UploadFile(filename='g.csv', content_type='text/csv', size=8)"
    assert reply.json()["head"] == "x,y"
    assert client.post("/upload", data={"note": "x"}).status_code == 415


def _writable(buffer: object) -> bool:
    """Whether ``buffer`` gives a writable buffer (ctypes asks for one)."""
    try:
        ctypes.c_char.from_buffer(buffer)  # type: ignore[arg-type]
    except TypeError:
        return False
    return True


def test_upload_bytes_are_read_in_place(client: TestClient) -> None:
    rng = random.Random()
    for size in [0, 1, rng.randint(2, 900), rng.randint(1_000, 300_000)]:
        data = rng.randbytes(size)
        reply = client.post("/upload/digest", files={"file": ("r.bin", data, "application/octet-stream")})
        assert reply.status_code == 200, reply.text
        assert reply.json() == {
            "size": size,
            "view": [True, True, size, size],
            "sha256": hashlib.sha256(data).hexdigest(),
            "crc32": zlib.crc32(data),
            "same_bytes": True,
            "writable": False,
        }


def test_an_upload_file_made_by_hand() -> None:
    data = os.urandom(random.randint(1, 64))
    file = UploadFile("n\u00e9.bin", "application/octet-stream", data)
    assert (file.filename, file.content_type, file.data, file.size, file.read()) == (
        "n\u00e9.bin",
        "application/octet-stream",
        data,
        len(data),
        data,
    )
    copy = pickle.loads(pickle.dumps(file))
    assert type(copy) is UploadFile and (copy.filename, copy.data) == (file.filename, data)
    assert file.data is data and bytes(file.view) == bytes(file) == data and file.view.readonly
    assert (hashlib.sha256(file).digest(), zlib.crc32(file)) == (hashlib.sha256(data).digest(), zlib.crc32(data))
    assert not _writable(file)
    with pytest.raises(AttributeError):
        file.filename = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        UploadFile("a", "b", "not bytes")  # type: ignore[arg-type]


def test_body_types(client: TestClient) -> None:
    assert client.post("/body/dict", json={"b": 1, "a": 2}).json() == {"keys": ["a", "b"]}
    assert client.post("/body/list", json=[1, 2, 3]).json() == [3, 2, 1]
    assert client.post("/body/dataclass", json={"x": 2, "y": 1.5}).json() == {"x": 4, "y": 3.0}
    assert client.post("/body/typeddict", json={"name": "Al", "age": 40}).json() == {"greeting": "hi Al", "next": 41}
    assert client.post("/body/struct/me", json={"name": "rex"}).json() == {
        "owner": "me",
        "pet": {"name": "rex", "legs": 4},
    }
    assert client.post("/body/raw", content=b"abc").content == b"cba"


def test_json_floats_come_back_bit_for_bit(client: TestClient) -> None:
    # Floats that need all 17 digits, which a fast, inexact decimal parser rounds to a
    # neighbour: each must come back as the same double, written as Python writes it.
    r = random.Random()
    floats = [0.46135590666100923, *(r.random() for _ in range(200)), *(r.uniform(-1e300, 1e300) for _ in range(50))]
    reply = client.post("/body/list", json=floats)
    assert reply.json() == floats[::-1]
    assert reply.content == json.dumps(floats[::-1], separators=(",", ":")).encode()
    assert client.post("/body/dataclass", json={"x": "no"}).json()["errors"][0]["loc"] == ["body", "x"]
    assert client.post("/body/dict", content="{", headers={"content-type": "application/json"}).status_code == 400


def test_text_answers_of_every_kind_of_string(client: TestClient) -> None:
    r = random.Random()
    pools = ["abc<&>", "abc\u00e9\u00ff", "ab\u0800\u30d5\uffff", "ab\U0001f600\u00e9"]
    for pool in pools:
        text = "".join(r.choice(pool + " xyz") for _ in range(r.randint(1, 300)))
        times = r.randint(1, 40)
        reply = client.post(f"/text/{times}", data={"text": text})
        assert (reply.status_code, reply.headers["content-type"]) == (200, "text/plain; charset=utf-8")
        assert reply.content == (text * times).encode()
        reply = client.post(f"/text/{times}?html=true", data={"text": text})
        assert (reply.headers["content-type"], reply.content) == ("text/html; charset=utf-8", (text * times).encode())
    reply = client.get("/text/surrogate")
    assert (reply.status_code, reply.json()["type"]) == (500, "urn:spikard:problem:internal")


def test_return_types(client: TestClient) -> None:
    r = client.get("/returns/str")
    assert (r.status_code, r.headers["content-type"], r.text) == (200, "text/plain; charset=utf-8", "plain text")
    r = client.get("/returns/bytes")
    assert (r.headers["content-type"], r.content) == ("application/octet-stream", b"\x00\x01")
    assert client.get("/returns/none").status_code == 204
    assert client.get("/returns/list").json() == [1, "two", 3.5, None, True]
    assert client.get("/returns/struct").json() == {"name": "rex", "legs": 3}
    assert client.get("/returns/dataclass").json() == {"x": 1, "y": 2.5}
    r = client.get("/returns/response")
    assert (r.status_code, r.headers["x-extra"], r.json()) == (201, "yes", {"made": True})
    r = client.get("/returns/html")
    assert (r.headers["content-type"], r.text) == ("text/html", "<b>hi</b>")
    assert client.get("/returns/nested").json() == {
        "when": "2024-05-06",
        "id": "00000000-0000-0000-0000-000000000001",
        "pet": {"name": "a", "legs": 4},
    }


def test_async_handlers(client: TestClient) -> None:
    assert client.get("/async/21").json() == {"n": 42}
    assert client.get("/async-sleep?ms=15").json() == {"slept": 15, "task": "inner"}


def test_async_handlers_wait_concurrently(client: TestClient) -> None:
    n = 8
    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(lambda _: client.get(f"/barrier?n={n}").json(), range(n)))
    assert results == [{"ok": True}] * n


def test_exceptions_are_500_and_serving_goes_on(client: TestClient, capfd: pytest.CaptureFixture[str]) -> None:
    for path in ["/raise", "/async-raise"]:
        r = client.get(path)
        assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
        assert "boom" not in r.text
        assert client.get("/async/1").json() == {"n": 2}
    assert "ValueError: boom" in capfd.readouterr().err


def test_event_streams(client: TestClient) -> None:
    r = client.get("/events?n=3")
    assert r.headers["content-type"] == "text/event-stream"
    assert r.text == 'event: text\nid: 0\ndata: line 0\n\ndata: {"i":1}\n\nevent: text\nid: 2\ndata: line 2\n\n'
    assert client.get("/aevents?n=3").text == "data: a0\n\ndata: a1\n\ndata: a2\n\n"
    # Record data as JSON, multi-line text as several data lines; an event that cannot be
    # encoded ends the stream (and is logged), after what was already sent.
    for n in (3, 8):
        assert client.get(f"/event-kinds?n={n}").text == (
            f'event: record\ndata: {{"n":{n},"half":{n / 2}}}\n\nid: id-{n}\ndata: first {n}\ndata: second\n\n'
        )


def test_event_streams_in_order_until_a_failure(client: TestClient) -> None:
    # Many events, some large: every one arrives, in order, and a failing event ends the
    # stream after all those before it.
    for n in (5, 41):
        r = client.get(f"/events-then-fail?n={n}")
        events = [e for e in r.text.split("\n\n") if e]
        assert [e.split("\n")[0] for e in events] == [f"id: {i}" for i in range(n)]
        assert [json.loads(e.split("\n")[1].removeprefix("data: "))["pad"] for e in events] == [
            "x" * (i % 7) * 300 for i in range(n)
        ]


def test_event_and_response_take_arguments_by_position_or_keyword() -> None:
    # Both classes are called through their own vectorcall; it must read every way of
    # passing the arguments as the signature says and refuse the rest as Python does.
    r = random.Random(7)
    for _ in range(20):
        data = {"n": r.randrange(10**6)}
        name, ident = f"e{r.randrange(100)}", str(r.randrange(100))
        made = [Event(data, name, ident), Event(data, event=name, id=ident), Event(id=ident, data=data, event=name)]
        made.append(Event.__new__(Event, data, name, ident))
        assert {(e.data["n"], e.event, e.id) for e in made} == {(data["n"], name, ident)}
        plain = Event(data["n"])
        assert (plain.data, plain.event, plain.id) == (data["n"], None, None)
        status = r.choice([200, 201, 404, 503])
        headers = {"x-n": str(data["n"])}
        for response in (
            Response(name, status, headers, "text/plain"),
            Response(content=name, media_type="text/plain", headers=headers, status=status),
        ):
            assert (response.content, response.status, response.headers, response.media_type) == (
                name,
                status,
                headers,
                "text/plain",
            )
    empty = Response()
    assert (empty.content, empty.status, empty.headers, empty.media_type) == (None, 200, {}, None)
    refused = [
        ("missing 1 required positional argument: 'data'", lambda: Event()),
        ("missing 1 required positional argument: 'data'", lambda: Event(event="e")),
        ("argument 'event': 'int' object is not an instance of 'str'", lambda: Event(1, 2)),
        ("argument 'id'", lambda: Event(1, id=b"7")),
        ("unexpected keyword argument 'name'", lambda: Event(1, name="e")),
        ("multiple values for argument 'event'", lambda: Event(1, "a", event="b")),
        ("takes from 1 to 3 positional arguments but 4 were given", lambda: Event(1, "a", "b", "c")),
        ("argument 'status'", lambda: Response("x", "200")),
        ("argument 'headers'", lambda: Response("x", headers=[("a", "b")])),
        ("unexpected keyword argument 'media'", lambda: Response(media="text/plain")),
    ]
    for message, call in refused:
        with pytest.raises(TypeError, match=message):
            call()
    with pytest.raises(ValueError, match="invalid status 99"):
        Response(status=99)
    with pytest.raises(OverflowError):
        Response(status=70000)
    with pytest.raises(TypeError, match="takes from 0 to 4 positional arguments but 5 were given"):
        Response(None, 200, None, None, None)
    with pytest.raises(TypeError):
        type("Sub", (Event,), {})


def test_websockets(client: TestClient) -> None:
    with connect(f"ws://127.0.0.1:{client.port}/ws/upper") as ws:
        ws.send("abc")
        assert ws.recv() == "ABC"
        ws.send(b"\x01\x02")
        assert ws.recv() == b"\x02\x01"
    with connect(f"ws://127.0.0.1:{client.port}/ws/async") as ws:
        ws.send("four")
        assert ws.recv() == '{"len":4}'


def test_registration_errors_name_handler_and_parameter() -> None:
    app = Spikard()
    with pytest.raises(RegistrationError, match=r"handler .*missing_param.*item_id"):

        @app.get("/items/{item_id}")
        def missing_param() -> dict:
            return {}

    with pytest.raises(RegistrationError, match=r"handler .*bad_type.*'when'.*unsupported"):

        @app.get("/bad")
        def bad_type(when: complex) -> dict:
            return {}

    with pytest.raises(RegistrationError, match=r"'rest'.*keyword-only"):

        @app.get("/kw")
        def kw(*, rest: int) -> dict:
            return {}

    with pytest.raises(RegistrationError, match=r"second body"):

        @app.post("/two")
        def two(a: dict, b: Pet) -> dict:
            return {}


def test_workers_share_the_port(table_dir) -> None:  # noqa: ANN001
    proc, port = start_server(table_dir, workers=2)
    try:
        assert len(_children(proc.pid)) == 2
        for n in range(40):
            # A new connection each time: SO_REUSEPORT spreads them over the workers.
            assert send(port, "GET", f"/path/int/{n}").json() == {"id": n}
        assert len(_children(proc.pid)) == 2
    finally:
        assert stop_server(proc) == 0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:  # pragma: no cover - not Linux
        return []


def test_test_client_runs_in_a_thread() -> None:
    app = Spikard()
    seen: list[str] = []

    @app.get("/who")
    def who() -> dict:
        seen.append(threading.current_thread().name)
        return {"ok": True}

    with TestClient(app) as c:
        assert c.get("/who").json() == {"ok": True}
    assert seen and seen[0] != threading.current_thread().name


def test_server_refuses_to_start_without_every_route(table_dir, tmp_path) -> None:  # noqa: ANN001
    table = json.loads((table_dir / "table.json").read_text())
    table.append({"name": "extra", "method": "GET", "route": "/not/served"})
    extra = tmp_path / "table.json"
    extra.write_text(json.dumps(table))
    run = subprocess.run(
        [sys.executable, "-m", "spikard", "workload_app:app", "--port", "0", "--require-routes", str(extra)],
        cwd=ROOT / "python",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert "extra (GET /not/served)" in run.stderr


def test_the_server_binary_starts_serves_and_stops() -> None:
    binary = ROOT / "target/debug/spikard-python-workloads"
    if not binary.exists():
        subprocess.run(["cargo", "build", "-q", "-p", "spikard-python-workloads"], cwd=ROOT, check=True)
    port = free_port()
    env = {**os.environ, "SPIKARD_PYTHON": sys.executable}
    proc = subprocess.Popen([str(binary), "--port", str(port), "--workers", "1"], env=env, start_new_session=True)
    try:
        wait_ready(port, proc)
        assert send(port, "GET", "/query/few?q=bin").json() == {"q": "bin", "page": 1, "limit": 20}
    finally:
        assert stop_server(proc) == 0
