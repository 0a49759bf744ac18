"""Spikard: Python handlers on a Rust HTTP engine.

Parameters are read from each handler's signature once, at registration; every request is
parsed and validated in Rust, and the handler is called with finished values.
"""

from ._compile import RegistrationError
from ._spikard import Event, Response, UploadFile
from .app import Spikard
from .params import Body, Form, Header, Path, Query
from .testing import TestClient

__all__ = [
    "Body",
    "Event",
    "Form",
    "Header",
    "Path",
    "Query",
    "RegistrationError",
    "Response",
    "Spikard",
    "TestClient",
    "UploadFile",
]
