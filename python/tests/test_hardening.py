"""What hostile or unlucky clients can do, replayed against both workload servers (Rust
handlers and Python handlers) over real sockets: each gets the documented answer, the two
servers answer alike, and the server keeps serving (a /health check after each)."""

from __future__ import annotations

import base64
import json
import os
import random
import resource
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import ROOT, free_port, stop_server, wait_ready
from http_util import send

BODY_TIMEOUT = 2.0
JSON = {"Content-Type": "application/json"}


def rust_binary() -> str:
    return os.environ.get("SPIKARD_RUST_WORKLOADS") or str(ROOT / "target/debug/spikard-rust-workloads")


def launch(
    kind: str, body_timeout: float, fd_limit: int | None = None, log: bool = False
) -> tuple[subprocess.Popen[bytes], int]:
    """Starts a workload server; `fd_limit` sets its hard and soft limit of open files, `log`
    keeps its stderr for the test to read."""
    port = free_port()
    timeout = ["--body-timeout", str(body_timeout)]
    if kind == "rust":
        line, cwd = [rust_binary(), "--port", str(port), "--threads", "1", *timeout], ROOT
    else:
        line = [sys.executable, "-m", "spikard", "workload_app:app", "--port", str(port), "--workers", "1", *timeout]
        cwd = ROOT / "python"

    def limit() -> None:
        if fd_limit is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))

    stderr = subprocess.PIPE if log else subprocess.DEVNULL
    proc = subprocess.Popen(line, cwd=cwd, start_new_session=True, preexec_fn=limit, stderr=stderr)
    wait_ready(port, proc)
    return proc, port


@pytest.fixture(scope="module", params=["rust", "python"])
def port(request: pytest.FixtureRequest) -> Iterator[int]:
    proc, port = launch(request.param, BODY_TIMEOUT)
    yield port
    stop_server(proc)


@pytest.fixture(autouse=True)
def still_serving(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every test on a shared server: it still answers /health."""
    yield
    if "port" in request.fixturenames:
        port = request.getfixturevalue("port")
        assert send(port, "GET", "/health").json() == {"status": "ok"}


def problem(port: int, method: str, target: str, body: bytes | str | None, headers: dict[str, str]) -> tuple[int, str]:
    reply = send(port, method, target, body, headers)
    if reply.status < 400:
        return reply.status, ""
    doc = reply.problem(reply.status)
    return reply.status, doc["type"].rsplit(":", 1)[1]


# -- JSON numbers, keys and depth -----------------------------------------------------------------

SMALL = '{"id":%s,"name":"n%d","active":true,"count":%d,"tags":["a"]}'


def small(id_literal: str) -> str:
    n = random.randint(1, 10**6)
    return SMALL % (id_literal, n, n)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        (lambda: small(str(2**63 - 1 - random.randint(0, 9))), 200, ""),
        (lambda: small(str(2**63 + random.randint(0, 10**6))), 422, "validation"),
        (lambda: small(str(-(2**63) - 1 - random.randint(0, 10**6))), 422, "validation"),
        (lambda: small(str(2**70 + random.randint(0, 10**6))), 422, "validation"),
        (lambda: small(f"1e{random.randint(400, 900)}"), 422, "validation"),
        (lambda: small("NaN"), 400, "malformed-json"),
        (lambda: small("Infinity"), 400, "malformed-json"),
        (lambda: small("1") + "x", 400, "malformed-json"),
        (lambda: nested(128), 400, "json-too-deep"),
        (lambda: nested(100_000), 400, "json-too-deep"),
        (lambda: small("1").replace('["a"]', nested(random.randint(130, 300))), 400, "json-too-deep"),
        (lambda: nested(random.randint(2, 100)), 422, "validation"),
    ],
    ids=[
        "i64-max",
        "i64-max+1",
        "i64-min-1",
        "2^70",
        "1e400",
        "NaN",
        "Infinity",
        "trailing",
        "depth-128",
        "depth-100000",
        "deep-field",
        "shallow-array",
    ],
)
@pytest.mark.parametrize("route", ["/json/small", "/json/medium", "/api/v1/users/7/posts"])
def test_json_bodies_follow_one_rule_in_both_servers(
    port: int, route: str, body: Callable[[], str], status: int, kind: str
) -> None:
    if status == 200 and route != "/json/small":
        status, kind = 422, "validation"  # a json-small record is not a Product or a post
    assert problem(port, "POST", route, body(), JSON) == (status, kind)


def test_wide_integers_are_named_where_they_are(port: int) -> None:
    n = random.randint(1, 10**6)
    body = json.dumps({"title": "t", "body": "b", "tags": ["x"]})[:-1] + f',"extra":[0,{{"n":{2**64 + n}}}]}}'
    reply = send(port, "POST", "/api/v1/users/7/posts", body, JSON)
    assert reply.error_locs() == [["body", "extra", 1, "n"]]


def test_a_repeated_key_keeps_its_last_value(port: int) -> None:
    first, last = random.sample(range(1, 10**6), 2)
    body = SMALL.replace('"id":%s', f'"id":{first},"id":%s') % (last, 1, 2)
    assert send(port, "POST", "/json/small", body, JSON).json()["id"] == last


# -- encodings, NUL, Host ---------------------------------------------------------------------------


def raw(port: int, request: bytes, timeout: float = 10.0) -> tuple[bytes, float]:
    """Sends raw bytes; returns everything the server sent until it closed (or a complete
    answer with Content-Length arrived), and how long that took."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            out += chunk
            head, sep, body = out.partition(b"\r\n\r\n")
            lengths = [h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")]
            if sep and lengths and len(body) >= int(lengths[0].split(b":")[1]):
                break
    return out, time.monotonic() - start


def raw_problem(out: bytes) -> tuple[int, str, bool]:
    """Status, problem type and whether the answer says `connection: close`."""
    head, _, body = out.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    close = b"connection: close" in head.lower()
    kind = json.loads(body)["type"].rsplit(":", 1)[1] if status >= 400 else ""
    return status, kind, close


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        ("/path/simple/a%ffb", "invalid-encoding"),
        ("/path/simple/a%C3%28", "invalid-encoding"),
        ("/path/simple/a%00b", "nul-character"),
        ("/query/few?q=%ff", "invalid-encoding"),
        ("/query/few?q=ok&page=%00", "nul-character"),
        ("/query/few?q%00=x", "nul-character"),
    ],
)
def test_bad_percent_encoding_in_path_or_query_is_a_distinct_400(port: int, target: str, kind: str) -> None:
    assert problem(port, "GET", target, None, {}) == (400, kind)


def test_form_values_follow_the_same_rules(port: int) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    good = f"name=n{random.randint(1, 99)}&email=e&age={random.randint(1, 99)}&city=c"
    assert problem(port, "POST", "/urlencoded/simple", good, form) == (200, "")
    assert problem(port, "POST", "/urlencoded/simple", good + "%ff", form) == (400, "invalid-encoding")
    assert problem(port, "POST", "/urlencoded/simple", good.replace("=e", "=e%00"), form) == (400, "nul-character")
    assert problem(port, "POST", "/urlencoded/simple", good.encode() + b"\x00", form) == (400, "nul-character")


def multipart(description: bytes) -> tuple[bytes, dict[str, str]]:
    body = (
        b'--XB\r\nContent-Disposition: form-data; name="description"\r\n\r\n' + description + b"\r\n"
        b'--XB\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + os.urandom(64) + b"\r\n--XB--\r\n"
    )
    return body, {"Content-Type": "multipart/form-data; boundary=XB"}


def test_multipart_text_that_is_not_utf8_is_a_400_like_a_form(port: int) -> None:
    text = f"café {random.randint(1, 999)}"
    body, headers = multipart(text.encode())
    assert send(port, "POST", "/multipart/small", body, headers).json()["description"] == text
    body, headers = multipart(b"caf\xe9")
    assert problem(port, "POST", "/multipart/small", body, headers) == (400, "invalid-encoding")
    body, headers = multipart(b"a\x00b")
    assert problem(port, "POST", "/multipart/small", body, headers) == (400, "nul-character")


def test_http11_without_host_is_400_and_closed(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /health HTTP/1.1\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        out = b""
        while chunk := s.recv(65536):  # until the server closes
            out += chunk
    assert raw_problem(out) == (400, "missing-host", True)
    assert b"HTTP/1.1 200" not in out, "the connection was not closed"
    out, _ = raw(port, b"GET /health HTTP/1.0\r\n\r\n")
    assert raw_problem(out)[0] == 200


def test_more_than_100_header_fields_is_431(port: int) -> None:
    fields = lambda n: b"".join(b"X-F%d: %d\r\n" % (i, i) for i in range(n))  # noqa: E731
    out, _ = raw(port, b"GET /health HTTP/1.1\r\nHost: x\r\n" + fields(98) + b"\r\n")
    assert raw_problem(out)[0] == 200
    out, _ = raw(port, b"GET /health HTTP/1.1\r\nHost: x\r\n" + fields(100) + b"\r\n")
    assert out.startswith(b"HTTP/1.1 431 "), out[:60]


# -- a body that never arrives -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "head",
    [
        b"POST /json/small HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 90\r\n\r\n",
        b"POST /json/small HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n6\r\n",
        b"POST /urlencoded/simple HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 500\r\n\r\n",
    ],
    ids=["content-length", "chunked", "form"],
)
def test_a_stalled_body_is_408_at_the_body_timeout_and_closed(port: int, head: bytes) -> None:
    out, took = raw(port, head + b'{"id":')
    assert raw_problem(out) == (408, "body-timeout", True)
    assert BODY_TIMEOUT - 0.1 <= took <= BODY_TIMEOUT + 1.5, took


def server_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stall(port: int, n: int) -> list[socket.socket]:
    """`n` clients that send a request head and the start of a body, then nothing."""
    head = b"POST /json/small HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 90\r\n\r\n{"
    clients = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(head)
        clients.append(s)
    return clients


def health_latency(port: int) -> float:
    start = time.monotonic()
    out, _ = raw(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", timeout=30)
    assert raw_problem(out)[0] == 200
    return time.monotonic() - start


@pytest.mark.parametrize("kind", ["rust", "python"])
def test_stalled_clients_beyond_the_descriptor_limit_are_cut_and_health_recovers(kind: str) -> None:
    timeout = 3.0
    proc, port = launch(kind, timeout, fd_limit=256, log=True)
    try:
        cpu_before = server_cpu(proc.pid)
        started = time.monotonic()
        clients = stall(port, 300)
        # Out of descriptors: /health waits in the listen queue until the stalled are cut.
        waited = health_latency(port)
        at = time.monotonic() - started
        assert at <= timeout + 1.0 + 1.0, f"/health answered {at:.1f} s after the stall began"
        busy = (server_cpu(proc.pid) - cpu_before) / (time.monotonic() - started)
        assert busy < 0.5, f"the server used {busy:.0%} of a core while it waited"
        assert waited > 0.5, "the descriptor limit was not reached"
        for s in clients:
            s.close()
        assert health_latency(port) < 1.0
    finally:
        stop_server(proc)
    log = proc.stderr.read().decode() if proc.stderr else ""
    assert "accept failed" in log
    assert log.count("accept failed") <= timeout + 3, "accept failures are logged more than once a second"


@pytest.mark.parametrize("kind", ["rust", "python"])
def test_stalled_clients_within_the_limit_do_not_delay_health(kind: str) -> None:
    proc, port = launch(kind, 3.0)  # the server raises its soft limit to the hard one
    try:
        clients = stall(port, 300)
        worst = max(health_latency(port) for _ in range(20))
        assert worst < 0.1, worst
        for s in clients:
            s.close()
    finally:
        stop_server(proc)


# -- WebSocket close codes ------------------------------------------------------------------------


def ws_connect(port: int) -> socket.socket:
    key = base64.b64encode(os.urandom(16))
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(
        b"GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def frame_header(opcode: int, length: int, mask: bytes) -> bytes:
    if length < 126:
        return bytes([0x80 | opcode, 0x80 | length]) + mask
    if length < 65536:
        return bytes([0x80 | opcode, 0x80 | 126]) + struct.pack(">H", length) + mask
    return bytes([0x80 | opcode, 0x80 | 127]) + struct.pack(">Q", length) + mask


def masked(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    return frame_header(opcode, len(payload), mask) + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def close_code(s: socket.socket) -> int | None:
    """Reads until the server's close frame; its code."""
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (TimeoutError, ConnectionResetError):
            return None
        if not chunk:
            return None
        out += chunk
        while len(out) >= 2:
            opcode, length = out[0] & 0x0F, out[1] & 0x7F
            if len(out) < 2 + length:
                break
            if opcode == 0x8:
                return int(struct.unpack(">H", out[2:4])[0])
            out = out[2 + length :]


def test_websocket_text_that_is_not_utf8_closes_with_1007(port: int) -> None:
    with ws_connect(port) as s:
        s.sendall(masked(0x1, b"fine") + masked(0x1, b"caf\xe9"))
        assert close_code(s) == 1007


def test_websocket_message_over_the_limit_closes_with_1009(port: int) -> None:
    with ws_connect(port) as s:
        s.sendall(frame_header(0x2, 17 * 1024 * 1024, os.urandom(4)) + os.urandom(4096))
        assert close_code(s) == 1009


# -- the Python server's own: deep answers, orphaned workers -------------------------------------------


DEEP_APP = """
import sys
from spikard import Spikard

app = Spikard()


@app.get("/deep/{depth}")
def deep(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@app.post("/any")
def any_body(body: dict) -> dict:
    return {"keys": sorted(body)}
"""


@pytest.fixture
def deep_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    where = tmp_path_factory.mktemp("deep")
    (where / "deep_app.py").write_text(DEEP_APP)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "spikard", "deep_app:app", "--port", str(port), "--workers", "1"],
        cwd=where,
        start_new_session=True,
        stderr=subprocess.PIPE,
    )
    wait_ready(port, proc)
    yield port, proc
    stop_server(proc)


def test_an_answer_nested_too_deeply_is_a_500_naming_the_handler(deep_app: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, proc = deep_app
    depth = random.randint(20, 500)
    assert send(port, "GET", f"/deep/{depth}").json() == json.loads(nested(depth + 1))
    for depth in (1_001, 20_000, 200_000):
        reply = send(port, "GET", f"/deep/{depth}")
        assert reply.problem(500)["type"].endswith(":internal")
        assert b"Traceback" not in reply.body
    assert send(port, "GET", "/deep/3").json() == [[[[]]]]
    stop_server(proc)
    log = proc.stderr.read().decode() if proc.stderr else ""
    assert log.count("handler deep raised:") == 3, log[-2000:]
    assert "deeper than 1000 levels" in log


def test_untyped_json_bodies_follow_the_same_rule(deep_app: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, _ = deep_app
    key = f"k{random.randint(1, 999)}"
    # At most 127 levels: an object holding 126 nested lists is fine, one more is not.
    assert send(port, "POST", "/any", f'{{"{key}":{nested(126)}}}', JSON).json() == {"keys": [key]}
    assert problem(port, "POST", "/any", '{"a":' + nested(127) + "}", JSON) == (400, "json-too-deep")
    assert problem(port, "POST", "/any", f'{{"a":{2**64}}}', JSON) == (422, "validation")
    assert problem(port, "POST", "/any", '{"a":1e999}', JSON) == (422, "validation")
    assert send(port, "POST", "/any", '{"a":1,"a":2,"b":3}', JSON).json() == {"keys": ["a", "b"]}


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_workers_stop_when_their_parent_is_killed(table_dir: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "spikard", "workload_app:app", "--port", str(port), "--workers", "2"],
        cwd=ROOT / "python",
        start_new_session=True,
    )
    workers: list[int] = []
    try:
        wait_ready(port, proc)
        workers = children(proc.pid)
        assert len(workers) == 2
        assert send(port, "GET", "/health").status == 200
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 10
        while any(alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(w) for w in workers), "workers outlived their parent"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        for w in workers:
            if alive(w):
                os.kill(w, 9)
