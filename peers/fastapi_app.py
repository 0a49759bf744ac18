"""Every Spikard workload on FastAPI, written the way FastAPI is meant to be used: pydantic
models for bodies, typed path/query/form parameters, FastAPI's own validation (its 422s).

    uvicorn fastapi_app:app --loop uvloop --http httptools
"""

from __future__ import annotations

import asyncio
import datetime
import json
import uuid
from typing import Annotated, Literal, Optional

import peer_db
from fastapi import FastAPI, File, Form, Path, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel
from zlib_ng import zlib_ng

app = FastAPI()
Order = Literal["asc", "desc"]


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


def _csv(value: Optional[str]) -> list[str]:
    return [part for part in (value or "").split(",") if part]


@app.get("/health")
async def health() -> dict:
    return {"status": "ok"}


@app.post("/json/small")
async def json_small(item: SmallItem) -> SmallItem:
    return item


@app.post("/json/medium")
async def json_medium(product: Product) -> Product:
    return product


@app.post("/json/large")
async def json_large(catalog: Catalog) -> Catalog:
    return catalog


@app.get("/path/simple/{id}")
async def path_simple(id: str) -> dict:
    return {"id": id}


@app.get("/path/multiple/{user_id}/{post_id}")
async def path_multiple(user_id: str, post_id: str) -> dict:
    return {"user_id": user_id, "post_id": post_id}


@app.get("/path/deep/{org}/{team}/{project}/{resource}/{id}")
async def path_deep(org: str, team: str, project: str, resource: str, id: str) -> dict:
    return {"org": org, "team": team, "project": project, "resource": resource, "id": id}


@app.get("/path/int/{id}")
async def path_int(id: int) -> dict:
    return {"id": id}


@app.get("/path/uuid/{id}")
async def path_uuid(id: uuid.UUID) -> dict:
    return {"id": str(id)}


@app.get("/path/date/{date}")
async def path_date(date: datetime.date) -> dict:
    return {"date": date.isoformat(), "day_of_week": date.isoweekday()}


@app.get("/query/few")
async def query_few(q: str, page: int = 1, limit: int = 20) -> dict:
    return {"q": q, "page": page, "limit": limit}


@app.get("/query/medium")
async def query_medium(
    category: str,
    tags: Optional[str] = None,
    min_price: Optional[float] = None,
    max_price: Optional[float] = None,
    sort: str = "relevance",
    order: Order = "asc",
    page: int = 1,
    limit: int = 20,
) -> dict:
    return {
        "category": category,
        "tags": _csv(tags),
        "min_price": min_price,
        "max_price": max_price,
        "sort": sort,
        "order": order,
        "page": page,
        "limit": limit,
    }


@app.get("/query/many")
async def query_many(
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
    fields: Optional[str] = None,
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
        "fields": _csv(fields),
    }


@app.post("/urlencoded/simple")
async def urlencoded_simple(
    name: Annotated[str, Form()],
    email: Annotated[str, Form()],
    age: Annotated[int, Form()],
    city: Annotated[str, Form()],
) -> dict:
    return {"name": name, "email": email, "age": age, "city": city}


@app.post("/urlencoded/complex")
async def urlencoded_complex(
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


async def _upload(description: str, file: UploadFile) -> dict:
    data = await file.read()
    return {
        "description": description,
        "filename": file.filename,
        "content_type": file.content_type,
        "size": len(data),
        "crc32": zlib_ng.crc32(data),
    }


@app.post("/multipart/small")
async def multipart_small(description: Annotated[str, Form()], file: Annotated[UploadFile, File()]) -> dict:
    return await _upload(description, file)


@app.post("/multipart/medium")
async def multipart_medium(description: Annotated[str, Form()], file: Annotated[UploadFile, File()]) -> dict:
    return await _upload(description, file)


@app.post("/multipart/large")
async def multipart_large(description: Annotated[str, Form()], file: Annotated[UploadFile, File()]) -> dict:
    return await _upload(description, file)


@app.post("/api/v1/users/{user_id}/posts")
async def mixed(user_id: int, post: Post, publish: bool = False, notify: bool = False) -> dict:
    return {"user_id": user_id, "publish": publish, "notify": notify, "post": post}


@app.get("/sse/{count}")
async def sse(count: Annotated[int, Path(ge=1, le=100_000)]) -> StreamingResponse:
    async def events():
        for seq in range(count):
            yield f"event: tick\ndata: {json.dumps({'seq': seq}, separators=(',', ':'))}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@app.websocket("/ws/echo")
async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            elif message.get("bytes") is not None:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        pass


@app.get("/fault")
async def fault() -> dict:
    await asyncio.sleep(0)
    raise RuntimeError("the fault workload raises on purpose")


@app.get("/json")
async def json_hello() -> dict:
    return {"message": "Hello, World!"}


@app.get("/plaintext", response_class=PlainTextResponse)
async def plaintext() -> str:
    return "Hello, World!"


@app.get("/db")
async def db() -> dict:
    return await peer_db.one()


@app.get("/queries")
async def queries(queries: Optional[str] = None) -> list:
    return await peer_db.many(queries)


@app.get("/updates")
async def updates(queries: Optional[str] = None) -> list:
    return await peer_db.update(queries)


@app.get("/fortunes", response_class=HTMLResponse)
async def fortunes() -> str:
    return await peer_db.fortunes()
