"""Markers that say where a handler parameter comes from.

Use them as defaults (``q: str = Query()``) or in ``Annotated[str, Query()]``; ``ge``/``le``
bound an integer parameter (inclusive). Without a marker, a parameter named like a
``{capture}`` of the path is a path parameter, an ``UploadFile`` is a form file, a dict, list,
dataclass, TypedDict or msgspec Struct is the JSON body, and anything else is a query
parameter.
"""

from __future__ import annotations

from typing import Any

_MISSING: Any = object()


class _Marker:
    source: str = ""

    def __init__(
        self, default: Any = _MISSING, *, alias: str | None = None, ge: int | None = None, le: int | None = None
    ) -> None:
        self.default = default
        self.alias = alias
        self.ge = ge
        self.le = le

    def __repr__(self) -> str:
        return f"{type(self).__name__}(default={self.default!r}, alias={self.alias!r})"


class Path(_Marker):
    source = "path"


class Query(_Marker):
    """A query parameter. ``csv=True`` also splits each value of a list on commas
    (``?tags=a,b``); repeated keys (``?tags=a&tags=b``) always make a list."""

    source = "query"

    def __init__(
        self,
        default: Any = _MISSING,
        *,
        alias: str | None = None,
        ge: int | None = None,
        le: int | None = None,
        csv: bool = False,
    ) -> None:
        super().__init__(default, alias=alias, ge=ge, le=le)
        self.csv = csv


class Header(_Marker):
    """A request header; the name defaults to the parameter's, with ``_`` read as ``-``."""

    source = "header"


class Form(_Marker):
    """A field of a URL-encoded or multipart form body."""

    source = "form"


class Body(_Marker):
    """The JSON body (or, annotated ``bytes``, the raw body)."""

    source = "body"
