"""Jinja templates, rendered in the engine by MiniJinja.

::

    from spikard import Spikard, Response
    from spikard.templating import Templates

    app = Spikard()
    templates = Templates("templates")

    @app.get("/hello/{name}")
    def hello(name: str) -> Response:
        return templates.response("hello.html", {"name": name})

``Templates(directory)`` loads a template from ``directory`` the first time it is asked for
and keeps it compiled. ``render(name, context, **values)`` gives the page as a str,
``response(name, context, status=200, headers=None, media_type=None)`` a :class:`Response`
with it as the body, ``text/html; charset=utf-8`` unless ``media_type`` says otherwise.

The template language is Jinja's as MiniJinja implements it: ``{{ … }}``, ``{% for %}``,
``{% if %}``, ``{% extends %}``, ``{% include %}``, macros, and the usual filters. Templates
whose names end in ``.html``, ``.htm`` or ``.xml`` escape what they write as
:func:`html.escape` does (``&``, ``<``, ``>``, ``"``, ``'``); ``|safe``, or a value with an
``__html__`` method (markupsafe's ``Markup``), is written as it is. Undefined names render
as nothing.

The context's plain values (str, int, float, bool, None, and dicts, lists and tuples of
them) are converted once per render; other objects are read when the template asks:
``row.name`` looks up the attribute, then the item ``row["name"]``; names that start with
``_`` are not looked up. A template that is missing raises :class:`TemplateNotFound`, one
that cannot be parsed or rendered :class:`TemplateError`, with the template's name and line.
"""

from ._spikard import TemplateError, TemplateNotFound, Templates

__all__ = ["TemplateError", "TemplateNotFound", "Templates"]
