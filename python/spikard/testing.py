"""``TestClient``: talk to an application over a real socket from a test."""

from __future__ import annotations

import http.client
import json as _json
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from .app import Spikard


class TestResponse:
    def __init__(self, status_code: int, headers: http.client.HTTPMessage, content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode()

    def json(self) -> Any:
        return _json.loads(self.content)

    def __repr__(self) -> str:
        return f"<TestResponse {self.status_code}>"


class TestClient:
    """Starts the application on 127.0.0.1 (a free port, a background thread) on first use
    and sends real HTTP requests to it. Use it as a context manager, or call ``close()``."""

    __test__ = False  # not a pytest class

    def __init__(self, app: Spikard) -> None:
        self.app = app
        self._server: Any = None

    @property
    def port(self) -> int:
        if self._server is None:
            self._server = self.app._start()
        return int(self._server.port)

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> TestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> TestResponse:
        all_headers = dict(headers or {})
        body: bytes | None = None
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params, doseq=True)
        if json is not None:
            body = _json.dumps(json).encode()
            all_headers.setdefault("content-type", "application/json")
        elif files is not None:
            body, all_headers["content-type"] = _multipart(data or {}, files)
        elif data is not None:
            body = urlencode(data, doseq=True).encode()
            all_headers.setdefault("content-type", "application/x-www-form-urlencoded")
        elif content is not None:
            body = content.encode() if isinstance(content, str) else content
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, url, body=body, headers=all_headers)
            response = conn.getresponse()
            return TestResponse(response.status, response.headers, response.read())
        finally:
            conn.close()

    def get(self, url: str, **kwargs: Any) -> TestResponse:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> TestResponse:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> TestResponse:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> TestResponse:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> TestResponse:
        return self.request("DELETE", url, **kwargs)


def _multipart(fields: Mapping[str, Any], files: Mapping[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data, content_type) in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
