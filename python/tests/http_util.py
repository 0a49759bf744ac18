"""A small HTTP client over real sockets and the answer checks of the route table."""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        return json.loads(self.body)

    def problem(self, status: int) -> dict:
        assert self.status == status, self.body
        assert self.content_type == "application/problem+json"
        doc = self.json()
        assert doc["status"] == status
        assert all(isinstance(doc[k], str) for k in ("type", "title", "detail"))
        return doc

    def error_locs(self) -> list[list[Any]]:
        return [e["loc"] for e in self.problem(422)["errors"]]


def send(
    port: int, method: str, target: str, body: bytes | str | None = None, headers: Mapping[str, str] | None = None
) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, target, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def send_sample(port: int, workload: dict) -> Reply:
    sample = workload["sample"]
    body = open(sample["body_file"], "rb").read() if sample.get("body_file") else None
    headers = {"content-type": sample["content_type"]} if sample.get("content_type") else {}
    return send(port, workload["method"], sample["target"], body, headers)


def json_matches(expected: Any, actual: Any, at: str = "$") -> None:
    """Numbers compare as numbers (100 == 100.0); bools are not numbers."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        assert expected is actual, f"at {at}: expected {expected!r}, got {actual!r}"
    elif isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        assert expected == actual, f"at {at}: expected {expected!r}, got {actual!r}"
    elif isinstance(expected, dict) and isinstance(actual, dict):
        assert expected.keys() == actual.keys(), f"at {at}: keys {sorted(actual)} != {sorted(expected)}"
        for key in expected:
            json_matches(expected[key], actual[key], f"{at}.{key}")
    elif isinstance(expected, list) and isinstance(actual, list):
        assert len(expected) == len(actual), f"at {at}: {len(actual)} items, expected {len(expected)}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            json_matches(e, a, f"{at}[{i}]")
    else:
        assert expected == actual, f"at {at}: expected {expected!r}, got {actual!r}"


def sse_body(count: int) -> str:
    return "".join(f'event: tick\ndata: {{"seq":{i}}}\n\n' for i in range(count))


def check(expected: dict, reply: Reply) -> None:
    kind = expected["kind"]
    media = reply.content_type.split(";")[0].strip()
    if kind == "json":
        assert reply.status == 200, reply.body
        assert media == "application/json"
        json_matches(expected["body"], reply.json())
    elif kind == "sse":
        assert reply.status == 200 and media == "text/event-stream"
        assert reply.body.decode() == sse_body(expected["count"])
    elif kind == "problem":
        reply.problem(expected["status"])
    elif kind == "text":
        assert reply.status == 200 and media == "text/plain"
        assert reply.body.decode() == expected["body"]
    else:
        raise AssertionError(f"unknown expectation {kind}")


def get_json(port: int, target: str) -> Any:
    """``GET target``, which must answer 200 with JSON."""
    reply = send(port, "GET", target)
    assert reply.status == 200, (reply.status, reply.body[:500])
    return reply.json()
