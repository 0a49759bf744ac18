"""Every Spikard workload as a raw RSGI application on Granian: no framework, the way RSGI is
meant to be used. Routing is a table lookup on path segments, bodies decode into msgspec
Structs (the typed decoder a performance-minded RSGI app reaches for), query strings and
forms go through the standard library, multipart through python-multipart's streaming parser.

    granian --interface rsgi --loop uvloop granian_app:app
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable
from typing import Any, Literal, Optional
from urllib.parse import parse_qs, unquote

import msgspec
import peer_db
from granian.rsgi import WebsocketMessageType
from python_multipart.multipart import MultipartParser, parse_options_header
from zlib_ng import zlib_ng

JSON = [("content-type", "application/json")]
PROBLEM = [("content-type", "application/problem+json")]
encode = msgspec.json.encode


class Invalid(Exception):
    """A request the route cannot take: answered with a problem document."""

    def __init__(
        self, status: int, detail: str, errors: Optional[list[dict[str, Any]]] = None, allow: Optional[str] = None
    ):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.allow = allow


class SmallItem(msgspec.Struct):
    id: int
    name: str
    active: bool
    count: int
    tags: list[str]


class Dimensions(msgspec.Struct):
    width: float
    height: float
    depth: float
    unit: str


class Ratings(msgspec.Struct):
    average: float
    count: int
    distribution: dict[str, int]


class Variant(msgspec.Struct):
    sku: str
    color: str
    size: str
    price: float
    stock: int


class Product(msgspec.Struct):
    id: int
    sku: str
    name: str
    description: str
    price: float
    currency: str
    in_stock: bool
    quantity: int
    categories: list[str]
    tags: list[str]
    attributes: dict[str, str]
    dimensions: Dimensions
    ratings: Ratings
    variants: list[Variant]
    created_at: str
    updated_at: str


class ItemAttributes(msgspec.Struct):
    color: str
    size: str
    material: str


class CatalogItem(msgspec.Struct):
    id: int
    name: str
    price: float
    in_stock: bool
    tags: list[str]
    attributes: ItemAttributes


class Catalog(msgspec.Struct):
    page: int
    per_page: int
    total: int
    items: list[CatalogItem]


class Post(msgspec.Struct):
    title: str
    body: str
    tags: list[str]


def _decoder(kind: type) -> Callable[[bytes], Any]:
    decoder = msgspec.json.Decoder(kind)

    def decode(body: bytes) -> Any:
        try:
            return decoder.decode(body)
        except msgspec.ValidationError as e:
            raise Invalid(422, str(e), [{"loc": ["body"], "msg": str(e)}]) from None
        except msgspec.DecodeError as e:
            raise Invalid(400, f"the body is not valid JSON: {e}") from None

    return decode


decode_small = _decoder(SmallItem)
decode_product = _decoder(Product)
decode_catalog = _decoder(Catalog)
decode_post = _decoder(Post)


# Typed conversion of path, query and form values; each failure names its source and field.
def _int(value: str, loc: tuple[str, str]) -> int:
    try:
        number = int(value)
    except ValueError:
        raise Invalid(422, "invalid parameter", [{"loc": list(loc), "msg": "not an integer"}]) from None
    if not -(2**63) <= number < 2**63:
        raise Invalid(422, "invalid parameter", [{"loc": list(loc), "msg": "out of range"}])
    return number


def _float(value: str, loc: tuple[str, str]) -> float:
    try:
        return float(value)
    except ValueError:
        raise Invalid(422, "invalid parameter", [{"loc": list(loc), "msg": "not a number"}]) from None


_BOOLS = {"true": True, "1": True, "false": False, "0": False}


def _bool(value: str, loc: tuple[str, str]) -> bool:
    try:
        return _BOOLS[value]
    except KeyError:
        raise Invalid(422, "invalid parameter", [{"loc": list(loc), "msg": "not a boolean"}]) from None


def _order(value: str, loc: tuple[str, str]) -> Literal["asc", "desc"]:
    if value == "asc" or value == "desc":
        return value
    raise Invalid(422, "invalid parameter", [{"loc": list(loc), "msg": "expected asc or desc"}])


def _csv(value: Optional[str]) -> list[str]:
    return [part for part in (value or "").split(",") if part]


class Fields:
    """The single values of a query string or form, with typed, located access."""

    __slots__ = ("values", "source")

    def __init__(self, raw: str, source: str):
        self.values = parse_qs(raw, keep_blank_values=True) if raw else {}
        self.source = source

    def one(self, name: str, default: Any = ...) -> Any:
        found = self.values.get(name)
        if found is None:
            if default is ...:
                raise Invalid(422, "missing parameter", [{"loc": [self.source, name], "msg": "required"}])
            return default
        return found[0]

    def every(self, name: str) -> list[str]:
        return self.values.get(name, [])

    def typed(self, name: str, convert: Callable[[str, tuple[str, str]], Any], default: Any = ...) -> Any:
        found = self.values.get(name)
        if found is None:
            return self.one(name, default)
        return convert(found[0], (self.source, name))


def _form(body: bytes, headers: Any) -> Fields:
    if not (headers.get("content-type") or "").startswith("application/x-www-form-urlencoded"):
        raise Invalid(415, "this route takes application/x-www-form-urlencoded")
    try:
        return Fields(body.decode(), "form")
    except UnicodeDecodeError:
        raise Invalid(400, "the form is not valid UTF-8") from None


async def health(scope: Any, proto: Any, path: list[str]) -> bytes:
    return b'{"status":"ok"}'


async def json_small(scope: Any, proto: Any, path: list[str]) -> bytes:
    return encode(decode_small(await proto()))


async def json_medium(scope: Any, proto: Any, path: list[str]) -> bytes:
    return encode(decode_product(await proto()))


async def json_large(scope: Any, proto: Any, path: list[str]) -> bytes:
    return encode(decode_catalog(await proto()))


async def path_simple(scope: Any, proto: Any, path: list[str]) -> bytes:
    return encode({"id": path[0]})


async def path_multiple(scope: Any, proto: Any, path: list[str]) -> bytes:
    return encode({"user_id": path[0], "post_id": path[1]})


async def path_deep(scope: Any, proto: Any, path: list[str]) -> bytes:
    org, team, project, resource, id = path
    return encode({"org": org, "team": team, "project": project, "resource": resource, "id": id})


async def path_int(scope: Any, proto: Any, path: list[str]) -> bytes:
    return encode({"id": _int(path[0], ("path", "id"))})


async def path_uuid(scope: Any, proto: Any, path: list[str]) -> bytes:
    try:
        value = uuid.UUID(path[0])
    except ValueError:
        raise Invalid(422, "invalid parameter", [{"loc": ["path", "id"], "msg": "not a UUID"}]) from None
    return encode({"id": str(value)})


async def path_date(scope: Any, proto: Any, path: list[str]) -> bytes:
    try:
        date = datetime.date.fromisoformat(path[0])
    except ValueError:
        raise Invalid(422, "invalid parameter", [{"loc": ["path", "date"], "msg": "not an ISO date"}]) from None
    return encode({"date": date.isoformat(), "day_of_week": date.isoweekday()})


async def query_few(scope: Any, proto: Any, path: list[str]) -> bytes:
    query = Fields(scope.query_string, "query")
    return encode({"q": query.one("q"), "page": query.typed("page", _int, 1), "limit": query.typed("limit", _int, 20)})


async def query_medium(scope: Any, proto: Any, path: list[str]) -> bytes:
    query = Fields(scope.query_string, "query")
    return encode(
        {
            "category": query.one("category"),
            "tags": _csv(query.one("tags", None)),
            "min_price": query.typed("min_price", _float, None),
            "max_price": query.typed("max_price", _float, None),
            "sort": query.one("sort", "relevance"),
            "order": query.typed("order", _order, "asc"),
            "page": query.typed("page", _int, 1),
            "limit": query.typed("limit", _int, 20),
        }
    )


async def query_many(scope: Any, proto: Any, path: list[str]) -> bytes:
    query = Fields(scope.query_string, "query")
    return encode(
        {
            "q": query.one("q"),
            "page": query.typed("page", _int, None),
            "limit": query.typed("limit", _int, None),
            "sort": query.one("sort", None),
            "order": query.typed("order", _order, None),
            "category": query.one("category", None),
            "min_price": query.typed("min_price", _float, None),
            "max_price": query.typed("max_price", _float, None),
            "in_stock": query.typed("in_stock", _bool, None),
            "brand": query.one("brand", None),
            "rating": query.typed("rating", _int, None),
            "color": query.one("color", None),
            "size": query.one("size", None),
            "lang": query.one("lang", None),
            "include_archived": query.typed("include_archived", _bool, None),
            "fields": _csv(query.one("fields", None)),
        }
    )


async def urlencoded_simple(scope: Any, proto: Any, path: list[str]) -> bytes:
    form = _form(await proto(), scope.headers)
    return encode(
        {"name": form.one("name"), "email": form.one("email"), "age": form.typed("age", _int), "city": form.one("city")}
    )


_COMPLEX_STR = (
    "first_name last_name email phone street city state zip country plan referral_code company job_title bio"
).split()


async def urlencoded_complex(scope: Any, proto: Any, path: list[str]) -> bytes:
    form = _form(await proto(), scope.headers)
    answer: dict[str, Any] = {name: form.one(name) for name in _COMPLEX_STR}
    answer["age"] = form.typed("age", _int)
    answer["newsletter"] = form.typed("newsletter", _bool)
    answer["terms_accepted"] = form.typed("terms_accepted", _bool)
    answer["interests"] = form.every("interests")
    return encode(answer)


class _Part:
    __slots__ = ("name", "filename", "content_type", "data", "header_field", "header_value")

    def __init__(self) -> None:
        self.name: Optional[str] = None
        self.filename: Optional[str] = None
        self.content_type = "text/plain"
        self.data = bytearray()
        self.header_field = bytearray()
        self.header_value = bytearray()


def _multipart(body: bytes, content_type: str) -> dict[str, _Part]:
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data":
        raise Invalid(415, "this route takes multipart/form-data")
    if not boundary:
        raise Invalid(400, "the multipart body has no boundary")
    parts: dict[str, _Part] = {}
    current = _Part()

    def on_part_begin() -> None:
        nonlocal current
        current = _Part()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        current.header_field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        current.header_value += data[start:end]

    def on_header_end() -> None:
        field = bytes(current.header_field).lower()
        if field == b"content-disposition":
            _, params = parse_options_header(bytes(current.header_value))
            name, filename = params.get(b"name"), params.get(b"filename")
            current.name = name.decode() if name is not None else None
            current.filename = filename.decode() if filename is not None else None
        elif field == b"content-type":
            current.content_type = bytes(current.header_value).decode()
        current.header_field.clear()
        current.header_value.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        current.data += data[start:end]

    def on_part_end() -> None:
        if current.name is not None:
            parts[current.name] = current

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except Exception as e:
        raise Invalid(400, f"broken multipart body: {e}") from None
    return parts


async def upload(scope: Any, proto: Any, path: list[str]) -> bytes:
    parts = _multipart(await proto(), scope.headers.get("content-type") or "")
    description, file = parts.get("description"), parts.get("file")
    missing = [name for name, part in (("description", description), ("file", file)) if part is None]
    if file is not None and file.filename is None:
        missing.append("file")
    if missing:
        raise Invalid(422, "missing fields", [{"loc": ["form", name], "msg": "required"} for name in missing])
    assert description is not None and file is not None
    try:
        text = description.data.decode()
    except UnicodeDecodeError:
        raise Invalid(422, "invalid field", [{"loc": ["form", "description"], "msg": "not UTF-8"}]) from None
    data = bytes(file.data)
    return encode(
        {
            "description": text,
            "filename": file.filename,
            "content_type": file.content_type,
            "size": len(data),
            "crc32": zlib_ng.crc32(data),
        }
    )


async def mixed(scope: Any, proto: Any, path: list[str]) -> bytes:
    user_id = _int(path[0], ("path", "user_id"))
    query = Fields(scope.query_string, "query")
    publish = query.typed("publish", _bool, False)
    notify = query.typed("notify", _bool, False)
    post = decode_post(await proto())
    return encode({"user_id": user_id, "publish": publish, "notify": notify, "post": post})


async def fault(scope: Any, proto: Any, path: list[str]) -> bytes:
    raise RuntimeError("the fault workload raises on purpose")


TEXT = [("content-type", "text/plain; charset=utf-8")]
HTML = [("content-type", "text/html; charset=utf-8")]


async def json_hello(scope: Any, proto: Any, path: list[str]) -> bytes:
    return encode({"message": "Hello, World!"})


async def plaintext(scope: Any, proto: Any, path: list[str]) -> tuple[list[tuple[str, str]], bytes]:
    return TEXT, b"Hello, World!"


def _queries(scope: Any) -> Optional[str]:
    values = parse_qs(scope.query_string).get("queries")
    return values[-1] if values else None


async def db(scope: Any, proto: Any, path: list[str]) -> bytes:
    return encode(await peer_db.one())


async def queries(scope: Any, proto: Any, path: list[str]) -> bytes:
    return encode(await peer_db.many(_queries(scope)))


async def updates(scope: Any, proto: Any, path: list[str]) -> bytes:
    return encode(await peer_db.update(_queries(scope)))


async def fortunes(scope: Any, proto: Any, path: list[str]) -> tuple[list[tuple[str, str]], bytes]:
    return HTML, (await peer_db.fortunes()).encode()


Handler = Callable[[Any, Any, list[str]], Any]

# (method, first segments) -> (number of path parameters after them, handler)
ROUTES: dict[tuple[str, tuple[str, ...]], tuple[int, Handler]] = {
    ("GET", ("health",)): (0, health),
    ("POST", ("json", "small")): (0, json_small),
    ("POST", ("json", "medium")): (0, json_medium),
    ("POST", ("json", "large")): (0, json_large),
    ("GET", ("path", "simple")): (1, path_simple),
    ("GET", ("path", "multiple")): (2, path_multiple),
    ("GET", ("path", "deep")): (5, path_deep),
    ("GET", ("path", "int")): (1, path_int),
    ("GET", ("path", "uuid")): (1, path_uuid),
    ("GET", ("path", "date")): (1, path_date),
    ("GET", ("query", "few")): (0, query_few),
    ("GET", ("query", "medium")): (0, query_medium),
    ("GET", ("query", "many")): (0, query_many),
    ("POST", ("urlencoded", "simple")): (0, urlencoded_simple),
    ("POST", ("urlencoded", "complex")): (0, urlencoded_complex),
    ("POST", ("multipart", "small")): (0, upload),
    ("POST", ("multipart", "medium")): (0, upload),
    ("POST", ("multipart", "large")): (0, upload),
    ("GET", ("fault",)): (0, fault),
    ("GET", ("json",)): (0, json_hello),
    ("GET", ("plaintext",)): (0, plaintext),
    ("GET", ("db",)): (0, db),
    ("GET", ("queries",)): (0, queries),
    ("GET", ("updates",)): (0, updates),
    ("GET", ("fortunes",)): (0, fortunes),
}
# /api/v1/users/{user_id}/posts: a parameter in the middle.
MIXED = ("api", "v1", "users")


def _route(method: str, path: str) -> tuple[Handler, list[str]]:
    segments = path.split("/")[1:]
    if len(segments) == 5 and tuple(segments[:3]) == MIXED and segments[4] == "posts":
        if method != "POST":
            raise Invalid(405, "method not allowed", allow="POST")
        return mixed, [unquote(segments[3])]
    allowed = []
    for head in (1, 2):
        prefix = tuple(segments[:head])
        for verb in ("GET", "POST"):
            found = ROUTES.get((verb, prefix))
            if found is not None and found[0] == len(segments) - head:
                if verb == method:
                    return found[1], [unquote(s) for s in segments[head:]]
                allowed.append(verb)
    if allowed:
        raise Invalid(405, "method not allowed", allow=", ".join(allowed))
    raise Invalid(404, f"no route for {path}")


_TITLES = {
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    500: "Internal Server Error",
}


def _problem(proto: Any, e: Invalid) -> None:
    document: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(e.status, "Error"),
        "status": e.status,
        "detail": e.detail,
    }
    if e.errors is not None:
        document["errors"] = e.errors
    headers = PROBLEM if e.allow is None else [*PROBLEM, ("allow", e.allow)]
    proto.response_bytes(e.status, headers, encode(document))


async def _sse(proto: Any, path: str) -> None:
    count = _int(unquote(path[len("/sse/") :]), ("path", "count"))
    if not 1 <= count <= 100_000:
        raise Invalid(422, "invalid parameter", [{"loc": ["path", "count"], "msg": "must be 1..=100000"}])
    stream = proto.response_stream(200, [("content-type", "text/event-stream"), ("cache-control", "no-cache")])
    for seq in range(count):
        await stream.send_str(f'event: tick\ndata: {{"seq":{seq}}}\n\n')


async def _websocket(scope: Any, proto: Any) -> None:
    if scope.path != "/ws/echo":
        proto.close(1008)
        return
    transport = await proto.accept()
    while True:
        message = await transport.receive()
        if message.kind == WebsocketMessageType.close:
            break
        if message.kind == WebsocketMessageType.string:
            await transport.send_str(message.data)
        else:
            await transport.send_bytes(message.data)
    proto.close(None)


async def app(scope: Any, proto: Any) -> None:
    if scope.proto == "ws":
        await _websocket(scope, proto)
        return
    try:
        if scope.path.startswith("/sse/") and scope.method == "GET":
            await _sse(proto, scope.path)
            return
        handler, params = _route(scope.method, scope.path)
        answer = await handler(scope, proto, params)
        headers, body = answer if isinstance(answer, tuple) else (JSON, answer)
        proto.response_bytes(200, headers, body)
    except Invalid as e:
        _problem(proto, e)
    except Exception:
        import traceback

        traceback.print_exc()
        _problem(proto, Invalid(500, "the handler failed"))
