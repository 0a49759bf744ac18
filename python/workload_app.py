"""Every benchmark workload of Spikard, served with Python handlers.

This is also the example of the API to copy from: parameters come from the signature (path
captures by name, the rest from the query unless marked), JSON bodies decode into msgspec
Structs, and returned Structs and dicts are encoded to JSON by the engine.

    python -m spikard workload_app:app --port 8200

The database workloads (``/db``, ``/queries``, ``/updates``, ``/fortunes``) read
``DATABASE_URL``: ``async def`` handlers on the engine's own pool (``spikard.postgres``,
tokio-postgres in the engine, as the Rust server uses), the same routes under ``/asyncpg/…``
on an asyncpg pool (the driver the peer frameworks use), and under ``/sync/…`` as ``def``
handlers on a psycopg pool, declared ``blocking=True`` so they run on the thread pool. Each
worker process has its own connections.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import html
import os
import random
import re
import uuid
from collections.abc import Callable
from operator import itemgetter
from typing import Annotated, Any, Literal, Optional, TypeVar

import asyncpg
import msgspec
import psycopg
import psycopg_pool
from zlib_ng import zlib_ng

from spikard import Event, Form, Path, Query, Response, Spikard, UploadFile, postgres

app = Spikard()

Order = Literal["asc", "desc"]


# -- records ------------------------------------------------------------------------------


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


# -- routes -------------------------------------------------------------------------------


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}


@app.post("/json/small")
def json_small(item: SmallItem) -> SmallItem:
    return item


@app.post("/json/medium")
def json_medium(product: Product) -> Product:
    return product


@app.post("/json/large")
def json_large(catalog: Catalog) -> Catalog:
    return catalog


@app.get("/path/simple/{id}")
def path_simple(id: str) -> dict:
    return {"id": id}


@app.get("/path/multiple/{user_id}/{post_id}")
def path_multiple(user_id: str, post_id: str) -> dict:
    return {"user_id": user_id, "post_id": post_id}


@app.get("/path/deep/{org}/{team}/{project}/{resource}/{id}")
def path_deep(org: str, team: str, project: str, resource: str, id: str) -> dict:
    return {"org": org, "team": team, "project": project, "resource": resource, "id": id}


@app.get("/path/int/{id}")
def path_int(id: int) -> dict:
    return {"id": id}


@app.get("/path/uuid/{id}")
def path_uuid(id: uuid.UUID) -> dict:
    return {"id": id}


@app.get("/path/date/{date}")
def path_date(date: datetime.date) -> dict:
    return {"date": date, "day_of_week": date.isoweekday()}


@app.get("/query/few")
def query_few(q: str, page: int = 1, limit: int = 20) -> dict:
    return {"q": q, "page": page, "limit": limit}


@app.get("/query/medium")
def query_medium(
    category: str,
    tags: Annotated[list[str], Query(csv=True)] = [],  # noqa: B006 - the engine copies defaults
    min_price: Optional[float] = None,
    max_price: Optional[float] = None,
    sort: str = "relevance",
    order: Order = "asc",
    page: int = 1,
    limit: int = 20,
) -> dict:
    return {
        "category": category,
        "tags": tags,
        "min_price": min_price,
        "max_price": max_price,
        "sort": sort,
        "order": order,
        "page": page,
        "limit": limit,
    }


@app.get("/query/many")
def query_many(
    q: str,
    page: Optional[int] = None,
    limit: Optional[int] = None,
    sort: Optional[str] = None,
    order: Optional[Order] = None,
    category: Optional[str] = None,
    min_price: Optional[float] = None,
    max_price: Optional[float] = None,
    in_stock: Optional[bool] = None,
    brand: Optional[str] = None,
    rating: Optional[int] = None,
    color: Optional[str] = None,
    size: Optional[str] = None,
    lang: Optional[str] = None,
    include_archived: Optional[bool] = None,
    fields: Annotated[list[str], Query(csv=True)] = [],  # noqa: B006
) -> dict:
    return {
        "q": q,
        "page": page,
        "limit": limit,
        "sort": sort,
        "order": order,
        "category": category,
        "min_price": min_price,
        "max_price": max_price,
        "in_stock": in_stock,
        "brand": brand,
        "rating": rating,
        "color": color,
        "size": size,
        "lang": lang,
        "include_archived": include_archived,
        "fields": fields,
    }


@app.post("/urlencoded/simple")
def urlencoded_simple(
    name: Annotated[str, Form()],
    email: Annotated[str, Form()],
    age: Annotated[int, Form()],
    city: Annotated[str, Form()],
) -> dict:
    return {"name": name, "email": email, "age": age, "city": city}


@app.post("/urlencoded/complex")
def urlencoded_complex(
    first_name: Annotated[str, Form()],
    last_name: Annotated[str, Form()],
    email: Annotated[str, Form()],
    phone: Annotated[str, Form()],
    age: Annotated[int, Form()],
    street: Annotated[str, Form()],
    city: Annotated[str, Form()],
    state: Annotated[str, Form()],
    zip: Annotated[str, Form()],
    country: Annotated[str, Form()],
    newsletter: Annotated[bool, Form()],
    interests: Annotated[list[str], Form()],
    plan: Annotated[str, Form()],
    referral_code: Annotated[str, Form()],
    company: Annotated[str, Form()],
    job_title: Annotated[str, Form()],
    bio: Annotated[str, Form()],
    terms_accepted: Annotated[bool, Form()],
) -> dict:
    return {
        "first_name": first_name,
        "last_name": last_name,
        "email": email,
        "phone": phone,
        "age": age,
        "street": street,
        "city": city,
        "state": state,
        "zip": zip,
        "country": country,
        "newsletter": newsletter,
        "interests": interests,
        "plan": plan,
        "referral_code": referral_code,
        "company": company,
        "job_title": job_title,
        "bio": bio,
        "terms_accepted": terms_accepted,
    }


def _upload(description: str, file: UploadFile) -> dict:
    return {
        "description": description,
        "filename": file.filename,
        "content_type": file.content_type,
        "size": file.size,
        "crc32": zlib_ng.crc32(file.view),
    }


@app.post("/multipart/small")
def multipart_small(description: Annotated[str, Form()], file: UploadFile) -> dict:
    return _upload(description, file)


@app.post("/multipart/medium")
def multipart_medium(description: Annotated[str, Form()], file: UploadFile) -> dict:
    return _upload(description, file)


@app.post("/multipart/large")
def multipart_large(description: Annotated[str, Form()], file: UploadFile) -> dict:
    return _upload(description, file)


@app.post("/api/v1/users/{user_id}/posts")
def mixed(user_id: int, post: Post, publish: bool = False, notify: bool = False) -> dict:
    return {"user_id": user_id, "publish": publish, "notify": notify, "post": post}


@app.get("/sse/{count}")
def sse(count: Annotated[int, Path(ge=1, le=100_000)]):  # noqa: ANN201 - a generator of events
    for seq in range(count):
        yield Event({"seq": seq}, event="tick")


@app.websocket("/ws/echo")
def echo(message: str | bytes) -> str | bytes:
    return message


@app.get("/fault")
def fault() -> dict:
    raise RuntimeError("the fault workload raises on purpose")


@app.get("/json")
def json_hello() -> dict:
    return {"message": "Hello, World!"}


@app.get("/plaintext")
def plaintext() -> str:
    return "Hello, World!"


# -- the same work as async def handlers, to measure what async costs -----------------------


@app.get("/async/path/int/{id}")
async def path_int_async(id: int) -> dict:
    return {"id": id}


@app.post("/async/json/small")
async def json_small_async(item: SmallItem) -> SmallItem:
    return item


@app.post("/async/api/v1/users/{user_id}/posts")
async def mixed_async(user_id: int, post: Post, publish: bool = False, notify: bool = False) -> dict:
    return {"user_id": user_id, "publish": publish, "notify": notify, "post": post}


# -- database: the engine's pool for async def, asyncpg beside it, psycopg for def ---------

DATABASE_URL = os.environ.get("DATABASE_URL")
POOL_SIZE = 16
ADDED_FORTUNE = "Additional fortune added at request time."
FORTUNES_HEAD = (
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table><tr><th>id</th><th>message</th></tr>"
)
_INTEGER = re.compile(r"[+-]?[0-9]+")

# The engine's pool opens no connection before its first query (in each worker), so it can be
# made here, before the workers start.
engine_pool = postgres.Pool(DATABASE_URL, max_size=POOL_SIZE) if DATABASE_URL else None
pools: dict[str, Any] = {}


def database() -> postgres.Pool:
    """The engine's pool; without ``DATABASE_URL`` the route answers 503, as the engine answers
    every :class:`spikard.postgres.Unavailable`."""
    if engine_pool is None:
        raise postgres.Unavailable("no database is configured: set DATABASE_URL")
    return engine_pool


async def keep_session(conn: asyncpg.Connection) -> None:
    """The handlers leave no session state behind (no ``SET``, ``LISTEN``, cursors or advisory
    locks), so a connection goes back to the pool without asyncpg's reset query, a round trip
    per request. asyncpg still rolls back a transaction left open."""


@app.on_startup
async def open_pools() -> None:
    if DATABASE_URL:
        # Connections open on first use, so a worker starts even while the database is down.
        # They stay open while idle (``max_inactive_connection_lifetime=0``), as in the Rust
        # server's pool: otherwise asyncpg re-arms an inactivity timer on every release and
        # cancels it on every acquire.
        pools["async"] = await asyncpg.create_pool(
            DATABASE_URL,
            min_size=0,
            max_size=POOL_SIZE,
            timeout=5,
            reset=keep_session,
            max_inactive_connection_lifetime=0,
        )
        pools["sync"] = psycopg_pool.ConnectionPool(
            DATABASE_URL, min_size=0, max_size=POOL_SIZE, kwargs={"autocommit": True}, timeout=5, open=True
        )


@app.on_shutdown
async def close_pools() -> None:
    if engine_pool is not None:
        await engine_pool.close()
    if "async" in pools:
        await pools.pop("async").close()
    if "sync" in pools:
        pools.pop("sync").close()


# What says the database is out of reach: no connection (class 08, refused, timed out), or
# the server ending or refusing sessions (57P01-57P03: an administrator, a crash, a start-up
# or shut-down in progress).
DatabaseDown = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    psycopg.OperationalError,
    LookupError,
)

H = TypeVar("H", bound=Callable[..., Any])


def unavailable(err: BaseException) -> Response:
    detail = "no database is configured: set DATABASE_URL" if isinstance(err, LookupError) else str(err)
    problem = {
        "type": "urn:spikard:problem:unavailable",
        "title": "Service Unavailable",
        "status": 503,
        "detail": f"the database cannot be reached: {detail}",
    }
    return Response(problem, status=503, media_type="application/problem+json")


def needs_database(handler: H) -> H:
    """Answers 503 with a problem document when asyncpg or psycopg cannot reach the database."""
    if asyncio.iscoroutinefunction(handler):

        @functools.wraps(handler)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            try:
                return await handler(*args, **kwargs)
            except DatabaseDown as err:
                return unavailable(err)

        return run_async  # type: ignore[return-value]

    @functools.wraps(handler)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except DatabaseDown as err:
            return unavailable(err)

    return run  # type: ignore[return-value]


def count(queries: str | None) -> int:
    """``queries=N`` clamped to 1..500; missing or not an integer counts as 1."""
    if queries is None or not _INTEGER.fullmatch(queries):
        return 1
    return min(max(int(queries), 1), 500)


WORLD_IDS = range(1, 10_001)


def random_id() -> int:
    return random.randint(1, 10_000)


def random_ids(n: int) -> list[int]:
    """``n`` ids of 1..10000, each drawn on its own (so they may repeat)."""
    return random.choices(WORLD_IDS, k=n)


def updated_rows(ids: list[int], numbers: list[int]) -> list[dict]:
    return [{"id": i, "randomNumber": n} for i, n in zip(ids, numbers, strict=True)]


def fortunes_page(rows: list[tuple[int, str]]) -> str:
    rows.append((0, ADDED_FORTUNE))
    rows.sort(key=itemgetter(1))
    cells = "".join(f"<tr><td>{id}</td><td>{html.escape(message)}</td></tr>" for id, message in rows)
    return FORTUNES_HEAD + cells + "</table></body></html>"


def html_response(page: str) -> Response:
    return Response(page, media_type="text/html; charset=utf-8")


SELECT_WORLD = "SELECT randomnumber FROM world WHERE id = $1"
UPDATE_WORLD = (
    "UPDATE world SET randomnumber = v.r FROM (SELECT unnest($1::integer[]) AS id, unnest($2::integer[]) AS r "
    "ORDER BY 1) AS v WHERE world.id = v.id"
)
SELECT_FORTUNES = "SELECT id, message FROM fortune"


def numbers_of(ids: list[int], rows: list[tuple[int]]) -> list[int]:
    if len(rows) != len(ids):
        raise RuntimeError(f"{len(ids)} ids asked for, {len(rows)} rows found")
    return [number for (number,) in rows]


@app.get("/db")
async def db() -> dict:
    id = random_id()
    return {"id": id, "randomNumber": await database().fetchval(SELECT_WORLD, id)}


@app.get("/queries")
async def queries(queries: str | None = None) -> list:
    ids = random_ids(count(queries))
    # One query per id, sent together in one pipeline on one connection.
    numbers = numbers_of(ids, await database().fetchmany(SELECT_WORLD, [(id,) for id in ids]))
    return [{"id": id, "randomNumber": number} for id, number in zip(ids, numbers, strict=True)]


@app.get("/updates")
async def updates(queries: str | None = None) -> list:
    ids = sorted(random.sample(WORLD_IDS, count(queries)))
    async with database().acquire() as conn:
        numbers_of(ids, await conn.fetchmany(SELECT_WORLD, [(id,) for id in ids]))
        numbers = random_ids(len(ids))
        rows = updated_rows(ids, numbers)
        await conn.execute(UPDATE_WORLD, ids, numbers)
    return rows


@app.get("/fortunes")
async def fortunes() -> Response:
    return html_response(fortunes_page(await database().fetch(SELECT_FORTUNES)))


# -- the same on asyncpg, the peers' driver ------------------------------------------------


async def read_numbers(conn: asyncpg.Connection, ids: list[int]) -> list[int]:
    """Each row's number, one query per id, sent together in one pipeline (as the Rust server's
    tokio-postgres pipelines them) rather than one round trip each."""
    return numbers_of(ids, await conn.fetchmany(SELECT_WORLD, [(id,) for id in ids]))


@app.get("/asyncpg/db")
@needs_database
async def asyncpg_db() -> dict:
    id = random_id()
    async with pools["async"].acquire() as conn:
        return {"id": id, "randomNumber": await conn.fetchval(SELECT_WORLD, id)}


@app.get("/asyncpg/queries")
@needs_database
async def asyncpg_queries(queries: str | None = None) -> list:
    ids = random_ids(count(queries))
    async with pools["async"].acquire() as conn:
        numbers = await read_numbers(conn, ids)
    return [{"id": id, "randomNumber": number} for id, number in zip(ids, numbers, strict=True)]


@app.get("/asyncpg/updates")
@needs_database
async def asyncpg_updates(queries: str | None = None) -> list:
    ids = sorted(random.sample(WORLD_IDS, count(queries)))
    async with pools["async"].acquire() as conn:
        await read_numbers(conn, ids)
        numbers = random_ids(len(ids))
        rows = updated_rows(ids, numbers)
        await conn.execute(UPDATE_WORLD, ids, numbers)
    return rows


@app.get("/asyncpg/fortunes")
@needs_database
async def asyncpg_fortunes() -> Response:
    async with pools["async"].acquire() as conn:
        rows = [tuple(row) for row in await conn.fetch(SELECT_FORTUNES)]
    return html_response(fortunes_page(rows))


SYNC_SELECT_WORLD = "SELECT randomnumber FROM world WHERE id = %s"
SYNC_UPDATE_WORLD = UPDATE_WORLD.replace("$1", "%s").replace("$2", "%s")


def sync_read_numbers(conn: psycopg.Connection, ids: list[int]) -> list[int]:
    """:func:`read_numbers` on psycopg: ``executemany`` sends the queries in one pipeline."""
    with conn.cursor() as cur:
        cur.executemany(SYNC_SELECT_WORLD, [(id,) for id in ids], returning=True)
        rows = [cur.fetchone() for _ in cur.results()]
    if len(rows) != len(ids) or None in rows:
        raise RuntimeError(f"{len(ids)} ids asked for, {len(rows) - rows.count(None)} rows found")
    return [row[0] for row in rows]


@app.get("/sync/db", blocking=True)
@needs_database
def sync_db() -> dict:
    id = random_id()
    with pools["sync"].connection() as conn:
        (number,) = conn.execute(SYNC_SELECT_WORLD, (id,), prepare=True).fetchone()
    return {"id": id, "randomNumber": number}


@app.get("/sync/queries", blocking=True)
@needs_database
def sync_queries(queries: str | None = None) -> list:
    ids = random_ids(count(queries))
    with pools["sync"].connection() as conn:
        numbers = sync_read_numbers(conn, ids)
    return [{"id": id, "randomNumber": number} for id, number in zip(ids, numbers, strict=True)]


@app.get("/sync/updates", blocking=True)
@needs_database
def sync_updates(queries: str | None = None) -> list:
    ids = sorted(random.sample(WORLD_IDS, count(queries)))
    with pools["sync"].connection() as conn:
        sync_read_numbers(conn, ids)
        numbers = random_ids(len(ids))
        rows = updated_rows(ids, numbers)
        conn.execute(SYNC_UPDATE_WORLD, (ids, numbers), prepare=True)
    return rows


@app.get("/sync/fortunes", blocking=True)
@needs_database
def sync_fortunes() -> Response:
    with pools["sync"].connection() as conn:
        rows = conn.execute(SELECT_FORTUNES).fetchall()
    return html_response(fortunes_page(rows))
