"""Every error row of WORKLOADS.md, against the Python workload server."""

from __future__ import annotations

import socket

from http_util import send

JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}


def test_malformed_bodies_are_400(server: int) -> None:
    send(server, "POST", "/json/small", '{"id": 1,', JSON).problem(400)
    send(server, "POST", "/json/small", "", JSON).problem(400)
    send(server, "POST", "/json/small", "{} trailing", JSON).problem(400)
    send(server, "POST", "/urlencoded/simple", "name=%FF%FE&age=1", FORM).problem(400)
    mp = {"content-type": "multipart/form-data; boundary=xyz"}
    send(server, "POST", "/multipart/small", "--nope\r\ngarbage", mp).problem(400)


def test_wrong_or_missing_fields_are_422_naming_each(server: int) -> None:
    assert send(server, "GET", "/query/few").error_locs() == [["query", "q"]]
    assert send(server, "GET", "/query/few?q=a&page=abc&limit=1.5").error_locs() == [
        ["query", "page"],
        ["query", "limit"],
    ]
    for bad in ["abc", "1.5", "9223372036854775808"]:
        assert send(server, "GET", f"/path/int/{bad}").error_locs() == [["path", "id"]]
    assert send(server, "GET", "/path/uuid/nope").error_locs() == [["path", "id"]]
    for bad in ["2024-02-30", "15-01-2024"]:
        assert send(server, "GET", f"/path/date/{bad}").error_locs() == [["path", "date"]]
    locs = send(server, "GET", "/query/medium?category=c&order=up&min_price=cheap&page=x").error_locs()
    assert locs == [["query", "min_price"], ["query", "order"], ["query", "page"]]
    locs = send(server, "GET", "/query/many?in_stock=yes&include_archived=2").error_locs()
    assert locs == [["query", "q"], ["query", "in_stock"], ["query", "include_archived"]]
    locs = send(server, "POST", "/urlencoded/simple", "name=a&age=old", FORM).error_locs()
    assert locs == [["form", "email"], ["form", "age"], ["form", "city"]]
    missing = send(server, "POST", "/json/small", '{"id":1,"name":"x","active":true,"tags":[]}', JSON)
    assert missing.error_locs() == [["body", "count"]]
    wrong = send(server, "POST", "/json/small", '{"id":1,"name":"x","active":true,"count":1,"tags":["a",2]}', JSON)
    assert wrong.error_locs() == [["body", "tags", 1]]
    for count in ["0", "100001", "many"]:
        assert send(server, "GET", f"/sse/{count}").error_locs() == [["path", "count"]]


def test_unknown_path_404_and_wrong_method_405(server: int) -> None:
    send(server, "GET", "/no/such/route").problem(404)
    reply = send(server, "DELETE", "/json/small")
    reply.problem(405)
    assert reply.headers["allow"] == "POST"


def test_body_over_limit_is_413(server: int) -> None:
    # The server answers as soon as it sees the declared length, before the body is sent.
    limit = 2 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", server), timeout=30) as s:
        s.sendall(
            f"POST /json/large HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            f"Content-Length: {limit + 1}\r\n\r\n".encode()
        )
        head = s.recv(65536).decode()
    assert head.startswith("HTTP/1.1 413 "), head
    assert "application/problem+json" in head
    # A body exactly at the limit is read (and then found to be no JSON document).
    send(server, "POST", "/json/large", b" " * limit, JSON).problem(400)


def test_wrong_content_type_is_415(server: int) -> None:
    send(server, "POST", "/json/small", "{}", {"content-type": "text/plain"}).problem(415)
    send(server, "POST", "/urlencoded/simple", "{}", JSON).problem(415)
    send(server, "POST", "/multipart/small", "description=x", FORM).problem(415)


def test_raising_handler_is_500_and_server_keeps_serving(server: int) -> None:
    for _ in range(3):
        doc = send(server, "GET", "/fault").problem(500)
        assert "on purpose" not in str(doc)
        assert send(server, "GET", "/path/int/5").json() == {"id": 5}
