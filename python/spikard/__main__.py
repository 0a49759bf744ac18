"""``python -m spikard module:app [--host H] [--port P] [--workers N]``."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

from .app import Spikard


def _load(target: str) -> Spikard:
    module_name, _, attr = target.partition(":")
    sys.path.insert(0, os.getcwd())
    app = getattr(importlib.import_module(module_name), attr or "app")
    if not isinstance(app, Spikard):
        raise SystemExit(f"spikard: {target} is not a Spikard application")
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m spikard", description="Serve a Spikard application.")
    parser.add_argument("app", help="module:attribute of the application, e.g. myapp:app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes sharing the port (default: one per CPU)"
    )
    parser.add_argument(
        "--body-timeout",
        type=float,
        metavar="SECONDS",
        help="seconds a request body may take to arrive once its head is in (default: the application's, 30)",
    )
    parser.add_argument(
        "--require-routes",
        metavar="TABLE_JSON",
        help="refuse to start unless every route of this table is served "
        "(a JSON list of objects with 'name', 'method' and 'route')",
    )
    args = parser.parse_args(argv)
    app = _load(args.app)
    if args.body_timeout is not None:
        if not args.body_timeout > 0:
            parser.error("--body-timeout must be a positive number of seconds")
        app.set_body_timeout(args.body_timeout)
    if args.require_routes:
        with open(args.require_routes) as f:
            table = json.load(f)
        served = set(app.routes)
        missing = [
            f"{w['name']} ({w['method']} {w['route']})" for w in table if (w["method"], w["route"]) not in served
        ]
        if missing:
            raise SystemExit("spikard: refusing to start: routes of the table not served: " + ", ".join(missing))
    app.run(host=args.host, port=args.port, workers=args.workers)


if __name__ == "__main__":
    main()
