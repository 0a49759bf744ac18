"""Every Spikard workload on Robyn, written the way Robyn is meant to be used: pydantic models
for JSON bodies, typed path and query parameters resolved from the handler's signature,
SSEResponse for streams. Robyn cannot serve query-many (it leaves percent-escapes in query
values), the multipart workloads or the WebSocket echo as WORKLOADS.md defines them; the
harness lists those as unsupported on Robyn.

    python robyn_app.py --processes 2 --workers 1
"""

import datetime
import json
import os
import uuid
from typing import Optional
from urllib.parse import parse_qs

import peer_db
from pydantic import BaseModel
from robyn import Request, Response, Robyn, SSEMessage, SSEResponse
from robyn.ws import WebSocketDisconnect

app = Robyn(__file__)
JSON = {"Content-Type": "application/json"}


class SmallItem(BaseModel):
    id: int
    name: str
    active: bool
    count: int
    tags: list[str]


class Dimensions(BaseModel):
    width: float
    height: float
    depth: float
    unit: str


class Ratings(BaseModel):
    average: float
    count: int
    distribution: dict[str, int]


class Variant(BaseModel):
    sku: str
    color: str
    size: str
    price: float
    stock: int


class Product(BaseModel):
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


class ItemAttributes(BaseModel):
    color: str
    size: str
    material: str


class CatalogItem(BaseModel):
    id: int
    name: str
    price: float
    in_stock: bool
    tags: list[str]
    attributes: ItemAttributes


class Catalog(BaseModel):
    page: int
    per_page: int
    total: int
    items: list[CatalogItem]


class Post(BaseModel):
    title: str
    body: str
    tags: list[str]


def problem(status: int, detail: str, field: Optional[list[str]] = None) -> Response:
    document: dict = {"type": "about:blank", "title": "Unprocessable Content", "status": status, "detail": detail}
    if field is not None:
        document["errors"] = [{"loc": field, "msg": detail}]
    return Response(status, {"Content-Type": "application/problem+json"}, json.dumps(document))


def _csv(value: Optional[str]) -> list[str]:
    return [part for part in (value or "").split(",") if part]


def _order(value: Optional[str], default: Optional[str]) -> Optional[str]:
    if value is None:
        return default
    if value not in ("asc", "desc"):
        raise ValueError("order must be asc or desc")
    return value


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}


@app.post("/json/small")
def json_small(body: SmallItem) -> SmallItem:
    return body


@app.post("/json/medium")
def json_medium(body: Product) -> Product:
    return body


@app.post("/json/large")
def json_large(body: Catalog) -> Catalog:
    return body


@app.get("/path/simple/:id")
def path_simple(id: str) -> dict:
    return {"id": id}


@app.get("/path/multiple/:user_id/:post_id")
def path_multiple(user_id: str, post_id: str) -> dict:
    return {"user_id": user_id, "post_id": post_id}


@app.get("/path/deep/:org/:team/:project/:resource/:id")
def path_deep(org: str, team: str, project: str, resource: str, id: str) -> dict:
    return {"org": org, "team": team, "project": project, "resource": resource, "id": id}


@app.get("/path/int/:id")
def path_int(id: int) -> dict:
    return {"id": id}


@app.get("/path/uuid/:id")
def path_uuid(id: uuid.UUID) -> dict:
    return {"id": str(id)}


@app.get("/path/date/:date")
def path_date(date: str):
    try:
        day = datetime.date.fromisoformat(date)
    except ValueError:
        return problem(422, "not an ISO 8601 date", ["path", "date"])
    return {"date": day.isoformat(), "day_of_week": day.isoweekday()}


@app.get("/query/few")
def query_few(q: str, page: int = 1, limit: int = 20) -> dict:
    return {"q": q, "page": page, "limit": limit}


@app.get("/query/medium")
def query_medium(
    category: str,
    tags: Optional[str] = None,
    min_price: Optional[float] = None,
    max_price: Optional[float] = None,
    sort: str = "relevance",
    order: Optional[str] = None,
    page: int = 1,
    limit: int = 20,
):
    try:
        checked = _order(order, "asc")
    except ValueError as e:
        return problem(422, str(e), ["query", "order"])
    return {
        "category": category,
        "tags": _csv(tags),
        "min_price": min_price,
        "max_price": max_price,
        "sort": sort,
        "order": checked,
        "page": page,
        "limit": limit,
    }


@app.get("/query/many")
def query_many(
    q: str,
    page: Optional[int] = None,
    limit: Optional[int] = None,
    sort: Optional[str] = None,
    order: Optional[str] = None,
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
    fields: Optional[str] = None,
):
    try:
        checked = _order(order, None)
    except ValueError as e:
        return problem(422, str(e), ["query", "order"])
    return {
        "q": q,
        "page": page,
        "limit": limit,
        "sort": sort,
        "order": checked,
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
        "fields": _csv(fields),
    }


def _form(request: Request) -> dict[str, list[str]]:
    # Robyn fills form_data from multipart bodies only, and keeps one value per key; an
    # urlencoded body is parsed with the standard library.
    body = request.body if isinstance(request.body, str) else bytes(request.body).decode()
    return parse_qs(body, keep_blank_values=True)


@app.post("/urlencoded/simple")
def urlencoded_simple(request: Request):
    form = _form(request)
    missing = [name for name in ("name", "email", "age", "city") if name not in form]
    if missing:
        return problem(422, f"missing form fields: {', '.join(missing)}", ["form", missing[0]])
    try:
        age = int(form["age"][0])
    except ValueError:
        return problem(422, "age is not an integer", ["form", "age"])
    return {"name": form["name"][0], "email": form["email"][0], "age": age, "city": form["city"][0]}


_COMPLEX_STR = (
    "first_name last_name email phone street city state zip country plan referral_code company job_title bio"
).split()
_BOOLS = {"true": True, "1": True, "false": False, "0": False}


@app.post("/urlencoded/complex")
def urlencoded_complex(request: Request):
    form = _form(request)
    required = [*_COMPLEX_STR, "age", "newsletter", "terms_accepted"]
    missing = [name for name in required if name not in form]
    if missing:
        return problem(422, f"missing form fields: {', '.join(missing)}", ["form", missing[0]])
    answer: dict = {name: form[name][0] for name in _COMPLEX_STR}
    try:
        answer["age"] = int(form["age"][0])
        answer["newsletter"] = _BOOLS[form["newsletter"][0]]
        answer["terms_accepted"] = _BOOLS[form["terms_accepted"][0]]
    except (ValueError, KeyError):
        return problem(422, "age, newsletter or terms_accepted has the wrong type", ["form", "age"])
    answer["interests"] = form.get("interests", [])
    return answer


# The multipart workloads are not served: Robyn's `files` gives each file's name and bytes but
# not its content type, which the workload's answer includes. The harness lists them as
# unsupported on Robyn.


@app.post("/api/v1/users/:user_id/posts")
def mixed(user_id: int, body: Post, publish: bool = False, notify: bool = False) -> dict:
    return {"user_id": user_id, "publish": publish, "notify": notify, "post": body.model_dump()}


@app.get("/sse/:count")
def sse(count: int):
    if not 1 <= count <= 100_000:
        return problem(422, "count must be 1..=100000", ["path", "count"])

    def events():
        for seq in range(count):
            yield SSEMessage(json.dumps({"seq": seq}, separators=(",", ":")), event="tick")

    return SSEResponse(events())


@app.websocket("/ws/echo")
async def ws_echo(websocket):
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


@app.get("/fault")
def fault() -> dict:
    raise RuntimeError("the fault workload raises on purpose")


@app.get("/json")
def json_hello() -> dict:
    return {"message": "Hello, World!"}


@app.get("/plaintext")
def plaintext() -> Response:
    return Response(200, {"Content-Type": "text/plain; charset=utf-8"}, "Hello, World!")


def _queries(request: Request) -> Optional[str]:
    return request.query_params.get("queries", None)


@app.get("/db")
async def db() -> dict:
    return await peer_db.one()


@app.get("/queries")
async def queries(request: Request) -> list:
    return await peer_db.many(_queries(request))


@app.get("/updates")
async def updates(request: Request) -> list:
    return await peer_db.update(_queries(request))


@app.get("/fortunes")
async def fortunes() -> Response:
    return Response(200, {"Content-Type": "text/html; charset=utf-8"}, await peer_db.fortunes())


if __name__ == "__main__":
    # _check_port=False: on a taken port Robyn would otherwise prompt for another one.
    app.start(
        host=os.environ.get("ROBYN_HOST", "127.0.0.1"),
        port=int(os.environ.get("ROBYN_PORT", "8080")),
        _check_port=False,
    )
