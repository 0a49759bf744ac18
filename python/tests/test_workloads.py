"""Every route of the table answers its sample as expected, with varied values too."""

from __future__ import annotations

import zlib

import pytest
from websockets.sync.client import connect

from http_util import check, json_matches, send, send_sample

HTTP_WORKLOADS = [
    "health",
    "json-small",
    "json-medium",
    "json-large",
    "path-simple",
    "path-multiple",
    "path-deep",
    "path-int",
    "path-uuid",
    "path-date",
    "query-few",
    "query-medium",
    "query-many",
    "urlencoded-simple",
    "urlencoded-complex",
    "multipart-small",
    "multipart-medium",
    "multipart-large",
    "mixed",
    "sse",
    "fault",
    "json-hello",
    "plaintext",
    # The same work as async def handlers.
    "path-int-async",
    "json-small-async",
    "mixed-async",
]
# Checked against the database in test_database.py.
DATABASE_WORKLOADS = [
    f"{name}{driver}" for name in ("db", "queries", "updates", "fortunes") for driver in ("", "-asyncpg", "-sync")
]


def test_the_table_lists_these_workloads(table: list[dict]) -> None:
    assert {w["name"] for w in table} == set(HTTP_WORKLOADS) | set(DATABASE_WORKLOADS) | {"websocket"}


@pytest.mark.parametrize("name", HTTP_WORKLOADS)
def test_sample_answers_as_expected(server: int, table: list[dict], name: str) -> None:
    workload = next(w for w in table if w["name"] == name)
    check(workload["expected"], send_sample(server, workload))


def test_websocket_echoes_text_binary_and_large(server: int) -> None:
    with connect(f"ws://127.0.0.1:{server}/ws/echo", max_size=None) as ws:
        for message in ["hello", b"\x00\xff\x01", "ünïcödé ✓", "x" * 70_000, bytes(range(256)) * 280]:
            ws.send(message)
            assert ws.recv() == message


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("prefix", ["", "/async"])
@pytest.mark.parametrize("ident,count", [(1, -5), (987654321, 0), (-3, 7)])
def test_json_is_decoded_not_echoed(server: int, prefix: str, ident: int, count: int) -> None:
    body = {
        "id": ident,
        "name": f"n{ident}",
        "active": ident > 0,
        "count": count,
        "tags": [str(ident)],
        "extra": {"x": 1},
    }
    reply = send(server, "POST", f"{prefix}/json/small", __import__("json").dumps(body), JSON)
    expected = {k: v for k, v in body.items() if k != "extra"}
    json_matches(expected, reply.json())


def test_path_values_vary(server: int) -> None:
    for n in [-(2**63), -1, 0, 7, 2**63 - 1]:
        assert send(server, "GET", f"/path/int/{n}").json() == {"id": n}
    assert send(server, "GET", "/path/simple/caf%C3%A9").json() == {"id": "café"}
    reply = send(server, "GET", "/path/uuid/6BA7B810-9DAD-11D1-80B4-00C04FD430C8")
    assert reply.json() == {"id": "6ba7b810-9dad-11d1-80b4-00c04fd430c8"}
    for date, weekday in [("2024-02-29", 4), ("2000-01-01", 6), ("2024-01-21", 7)]:
        assert send(server, "GET", f"/path/date/{date}").json() == {"date": date, "day_of_week": weekday}
    assert send(server, "GET", "/path/deep/o/t/p/r/i").json() == {
        "org": "o",
        "team": "t",
        "project": "p",
        "resource": "r",
        "id": "i",
    }


def test_query_defaults_and_lists(server: int) -> None:
    assert send(server, "GET", "/query/few?q=x+y&limit=3").json() == {"q": "x y", "page": 1, "limit": 3}
    answer = send(server, "GET", "/query/medium?category=c&tags=a&tags=b,c&order=desc&max_price=2.5").json()
    assert answer == {
        "category": "c",
        "tags": ["a", "b", "c"],
        "min_price": None,
        "max_price": 2.5,
        "sort": "relevance",
        "order": "desc",
        "page": 1,
        "limit": 20,
    }
    answer = send(server, "GET", "/query/many?q=only&in_stock=1&include_archived=0").json()
    assert answer["in_stock"] is True and answer["include_archived"] is False
    assert answer["fields"] == [] and answer["brand"] is None and len(answer) == 16


def test_forms_multipart_and_mixed_vary(server: int) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    reply = send(server, "POST", "/urlencoded/simple", "city=Paris&age=41&name=Ana+Lu&email=a%2Bb%40c.io", form)
    assert reply.json() == {"name": "Ana Lu", "email": "a+b@c.io", "age": 41, "city": "Paris"}
    boundary = "b0und"
    for size in [0, 3, 5000]:
        data = bytes((i * 7 + size) % 256 for i in range(size))
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="description"\r\n\r\nvaried\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="v.dat"\r\n'
                f"Content-Type: image/png\r\n\r\n"
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        reply = send(
            server, "POST", "/multipart/medium", body, {"content-type": f"multipart/form-data; boundary={boundary}"}
        )
        assert reply.json() == {
            "description": "varied",
            "filename": "v.dat",
            "content_type": "image/png",
            "size": size,
            "crc32": zlib.crc32(data),
        }
    for prefix, user in [("", -9), ("/async", 31)]:
        body = f'{{"title":"t{user}","body":"b","tags":["{user}"],"x":1}}'
        reply = send(server, "POST", f"{prefix}/api/v1/users/{user}/posts?notify=1", body, JSON)
        assert reply.json() == {
            "user_id": user,
            "publish": False,
            "notify": True,
            "post": {"title": f"t{user}", "body": "b", "tags": [str(user)]},
        }
    for n in (0, -17, 2**40):
        assert send(server, "GET", f"/async/path/int/{n}").json() == {"id": n}
    assert send(server, "GET", "/async/path/int/x").problem(422)["errors"][0]["loc"] == ["path", "id"]


def test_sse_counts(server: int) -> None:
    for count in [1, 3, 2500]:
        reply = send(server, "GET", f"/sse/{count}")
        text = reply.body.decode()
        assert text.count("event: tick\n") == count
        assert text.endswith(f'data: {{"seq":{count - 1}}}\n\n')
        seqs = [
            int(line.removeprefix('data: {"seq":').removesuffix("}"))
            for line in text.split("\n")
            if line.startswith("data")
        ]
        assert seqs == list(range(count))
