"""Compiling a handler's signature, once, into the engine's parameter plan.

Nothing here runs per request: the engine receives a list of parameter specs
``(name, source, type, required, default, key, bounds)`` and a body spec, and from then on parses and
validates every request in Rust and calls the function with finished values.
"""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import re
import types
import typing
import uuid
from collections.abc import Callable
from typing import Any, Literal, Union

from ._spikard import UploadFile
from .params import _MISSING, Body, Query, _Marker

try:  # msgspec decodes typed bodies (dataclasses, TypedDicts, Structs) in C.
    import msgspec
except ImportError:  # pragma: no cover - a dependency of the package
    msgspec = None  # type: ignore[assignment]

_SCALARS: dict[Any, str] = {
    str: "str",
    int: "int",
    float: "float",
    bool: "bool",
    uuid.UUID: "uuid",
    datetime.date: "date",
    datetime.datetime: "datetime",
}

_CAPTURE = re.compile(r"\{\*?([A-Za-z_][A-Za-z0-9_]*)\}")


class RegistrationError(TypeError):
    """A handler whose signature the engine cannot serve."""


def path_captures(path: str) -> list[str]:
    return _CAPTURE.findall(path)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    if typing.get_origin(tp) is Union or isinstance(tp, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _scalar(tp: Any) -> Any:
    if tp in _SCALARS:
        return _SCALARS[tp]
    if typing.get_origin(tp) is Literal:
        choices = typing.get_args(tp)
        if all(isinstance(c, str) for c in choices):
            return ("enum", list(choices))
    return None


def _is_body_type(tp: Any) -> bool:
    if tp in (dict, list, Any) or typing.get_origin(tp) is dict:
        return True
    if typing.get_origin(tp) is list:
        # list[str] and the like are query lists; list[SomeRecord] is a body.
        return _scalar(typing.get_args(tp)[0]) is None
    if dataclasses.is_dataclass(tp) or typing.is_typeddict(tp):
        return True
    if msgspec is not None and isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return True
    return hasattr(tp, "model_validate_json")  # a pydantic model


class _PydanticDecoder:
    """Decodes a body into a pydantic model (used only when pydantic is installed)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def decode(self, data: bytes) -> Any:
        return self.model.model_validate_json(data)


def _body_spec(tp: Any) -> Any:
    if tp is bytes:
        return "bytes"
    if tp in (dict, list, Any) or typing.get_origin(tp) in (dict, list) and _plain_json(tp):
        return "json"
    if hasattr(tp, "model_validate_json"):
        return _PydanticDecoder(tp)
    if msgspec is None:
        raise RegistrationError("typed bodies need msgspec installed")
    return msgspec.json.Decoder(tp)


_CONTAINERS = (dict, list, tuple, set, frozenset)


def _nests_freely(tp: Any, path: tuple[Any, ...] = ()) -> bool:
    """Whether a value of type ``tp`` can nest arrays and objects without bound: it holds
    ``Any``, ``object``, a container of those, or itself. Bodies of such types get their depth
    checked after decoding; others cannot be deeper than their type."""
    if tp in (Any, object) or tp in _CONTAINERS:
        return True
    origin = typing.get_origin(tp)
    if origin is Literal:
        return False
    if origin is typing.Annotated:
        return _nests_freely(typing.get_args(tp)[0], path)
    if origin is not None:
        return any(_nests_freely(arg, path) for arg in typing.get_args(tp) if arg is not Ellipsis)
    if not isinstance(tp, type) or tp in _SCALARS or tp in (bytes, type(None)):
        return False
    if tp in path:  # a record that holds itself
        return True
    try:
        hints = typing.get_type_hints(tp)
    except Exception:  # noqa: BLE001 - unresolvable annotations: assume the worst
        return True
    return any(_nests_freely(hint, (*path, tp)) for hint in hints.values())


def _plain_json(tp: Any) -> bool:
    """``dict[str, Any]``-like types need no typed decoding."""
    return all(a in (str, Any, object) for a in typing.get_args(tp))


def compile_handler(func: Callable[..., Any], path: str) -> tuple[list[tuple[Any, ...]], tuple[int, Any, bool] | None]:
    """Returns the engine's parameter specs and body spec for ``func`` served at ``path``."""
    name = getattr(func, "__qualname__", repr(func))
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:  # noqa: BLE001 - any failure to resolve annotations
        raise RegistrationError(f"handler {name}: cannot resolve annotations: {exc}") from exc
    signature = inspect.signature(func)
    captures = path_captures(path)
    params: list[tuple[Any, ...]] = []
    body: tuple[int, Any, bool] | None = None
    seen_captures: set[str] = set()

    def fail(pname: str, why: str) -> RegistrationError:
        return RegistrationError(f"handler {name}: parameter {pname!r} {why}")

    for position, (pname, parameter) in enumerate(signature.parameters.items()):
        if parameter.kind not in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            raise fail(pname, "must be a plain positional parameter (no *args, **kwargs or keyword-only)")
        tp = hints.get(pname, str)
        marker: _Marker | None = None
        if typing.get_origin(tp) is typing.Annotated:
            tp, *extras = typing.get_args(tp)
            marker = next((e for e in extras if isinstance(e, _Marker)), None)
        default = parameter.default
        if isinstance(default, _Marker):
            marker, default = default, default.default
        elif marker is not None and marker.default is not _MISSING:
            default = marker.default
        if default is inspect.Parameter.empty:
            default = _MISSING
        tp, optional = _unwrap_optional(tp)

        if isinstance(marker, Body) or (marker is None and pname not in captures and _is_body_type(tp)):
            if body is not None:
                raise fail(pname, "is a second body; a handler takes at most one")
            body = (position, _body_spec(tp), _nests_freely(tp))
            continue
        if marker is not None:
            source = marker.source
        elif tp is UploadFile:
            source = "form"
        elif pname in captures:
            source = "path"
        else:
            source = "query"
        key = (marker.alias if marker is not None and marker.alias else None) or pname
        if source == "path":
            if key not in captures:
                raise fail(pname, f"is marked Path() but {path!r} has no {{{key}}}")
            seen_captures.add(key)
        if source == "header" and not (marker is not None and marker.alias):
            key = pname.replace("_", "-")

        if tp is UploadFile:
            if source != "form":
                raise fail(pname, "is an UploadFile, which only a form body can carry")
            type_spec: Any = "file"
        elif typing.get_origin(tp) is list:
            (item,) = typing.get_args(tp) or (str,)
            item_spec = _scalar(item)
            if item_spec is None:
                raise fail(pname, f"has unsupported list item type {item!r}")
            csv = isinstance(marker, Query) and marker.csv
            type_spec = ("list", item_spec, csv)
        else:
            type_spec = _scalar(tp)
            if type_spec is None:
                raise fail(pname, f"has unsupported type {tp!r} for a {source} parameter")
        required = default is _MISSING and not optional
        default_value = None if default is _MISSING else default
        bounds = None
        if marker is not None and (marker.ge is not None or marker.le is not None):
            if type_spec != "int":
                raise fail(pname, "has ge/le bounds, which only int parameters take")
            bounds = (
                marker.ge if marker.ge is not None else -(2**63),
                marker.le if marker.le is not None else 2**63 - 1,
            )
        params.append((pname, source, type_spec, required, default_value, key, bounds))

    missing = [c for c in captures if c not in seen_captures]
    if missing:
        raise RegistrationError(
            f"handler {name}: path {path!r} captures {{{missing[0]}}} but the function has no parameter {missing[0]!r}"
        )
    return params, body
