"""Every benchmark workload of Spikard, served with Python handlers.

This is also the example of the API to copy from: parameters come from the signature (path
captures by name, the rest from the query unless marked), JSON bodies decode into msgspec
Structs, and returned Structs and dicts are encoded to JSON by the engine.

    python -m spikard workload_app:app --port 8200
"""

from __future__ import annotations

import datetime
import uuid
import zlib
from typing import Annotated, Literal, Optional

import msgspec

from spikard import Event, Form, Path, Query, Spikard, UploadFile

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
        "crc32": zlib.crc32(file.data),
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
