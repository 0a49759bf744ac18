"""Templates: pages rendered by the engine's MiniJinja, served over a real socket and checked
against what Python's own ``html.escape`` and string formatting make of the same values."""

from __future__ import annotations

import dataclasses
import html
import random
import string
from pathlib import Path

import pytest

from spikard import Response, Spikard, TestClient
from spikard.templating import TemplateError, TemplateNotFound, Templates

PAGE = """<ul>
{%- for id, name in rows %}<li id="{{ id }}">{{ name }}</li>{% endfor -%}
</ul><p>{{ user.name }} ({{ user.age }}) {{ note }} {{ missing }}</p>"""


@dataclasses.dataclass
class User:
    name: str
    age: int
    _secret: str = "hidden"


class Markup(str):
    """What markupsafe's ``Markup`` looks like to a template: a str with ``__html__``."""

    def __html__(self) -> str:
        return str(self)


def random_text(rng: random.Random) -> str:
    alphabet = string.ascii_letters + "&<>\"' /=ü日本"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    root = tmp_path_factory.mktemp("templates")
    (root / "page.html").write_text(PAGE, encoding="utf-8")
    (root / "plain.txt").write_text("{{ text }}|{{ n * 2 }}", encoding="utf-8")
    (root / "base.html").write_text("<title>{% block title %}{% endblock %}</title>{% include 'foot.html' %}")
    (root / "child.html").write_text("{% extends 'base.html' %}{% block title %}{{ title }}{% endblock %}")
    (root / "foot.html").write_text("<footer>{{ title|upper }}</footer>")
    (root / "broken.html").write_text("line one\n{% for x in %}\n")
    (root / "fails.html").write_text("{{ no_such_function() }}")
    (root / "items.html").write_text("{% for x in items %}{{ x }},{% endfor %}|{{ items|length }}")
    return Templates(root)


@pytest.fixture(scope="module")
def client(templates: Templates):  # noqa: ANN201
    app = Spikard()

    @app.get("/page/{seed}")
    def page(seed: int) -> Response:
        rng = random.Random(seed)
        rows = [(rng.randint(-1000, 1000), random_text(rng)) for _ in range(rng.randint(0, 8))]
        user = User(random_text(rng), rng.randint(0, 120))
        return templates.response("page.html", {"rows": rows, "user": user, "note": Markup("<b>ok</b>")})

    @app.get("/plain")
    def plain(text: str, n: int) -> Response:
        return templates.response("plain.txt", {"text": text, "n": n}, media_type="text/plain; charset=utf-8")

    @app.get("/created/{title}")
    async def created(title: str) -> Response:
        return templates.response("child.html", {"title": title}, status=201, headers={"x-page": title})

    @app.get("/missing")
    def missing() -> Response:
        return templates.response("nope.html")

    with TestClient(app) as c:
        yield c


def expected_page(seed: int) -> str:
    rng = random.Random(seed)
    rows = [(rng.randint(-1000, 1000), random_text(rng)) for _ in range(rng.randint(0, 8))]
    user = User(random_text(rng), rng.randint(0, 120))
    items = "".join(f'<li id="{id}">{html.escape(name)}</li>' for id, name in rows)
    return f"<ul>{items}</ul><p>{html.escape(user.name)} ({user.age}) <b>ok</b> </p>"


def test_pages_are_escaped_as_html_escape_escapes(client: TestClient) -> None:
    for seed in random.sample(range(1_000_000), 25):
        r = client.get(f"/page/{seed}")
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        assert r.text == expected_page(seed)


def test_other_templates_are_not_escaped(client: TestClient) -> None:
    n = random.randint(-(10**6), 10**6)
    r = client.get("/plain", params={"text": "<a & 'b'>", "n": str(n)})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.text == f"<a & 'b'>|{n * 2}"


def test_extends_include_status_and_headers(client: TestClient) -> None:
    title = random.choice(["fish & chips", "a<b", "plain"]) + str(random.randint(0, 99))
    r = client.get(f"/created/{title.replace(' ', '%20').replace('&', '%26').replace('<', '%3C')}")
    assert r.status_code == 201
    assert r.headers["x-page"] == title
    assert r.text == f"<title>{html.escape(title)}</title><footer>{html.escape(title.upper())}</footer>"


def test_a_missing_template_is_a_500_and_serving_goes_on(client: TestClient) -> None:
    assert client.get("/missing").status_code == 500
    assert client.get("/page/7").text == expected_page(7)


def test_render_gives_a_str_and_keywords_win(templates: Templates) -> None:
    text = random_text(random.Random())
    assert templates.render("plain.txt", {"text": "context", "n": 1}, text=text) == f"{text}|2"
    assert isinstance(templates.render("plain.txt", text="x", n=0), str)


def test_values_of_every_kind(templates: Templates) -> None:
    big = random.randint(2**70, 2**80)
    items = [None, True, 1.5, big, -3, "x&y", ("t", 1), {"k": "v"}, Markup("<i>")]
    out = templates.render("items.html", items=items)
    assert out == f"None,True,1.5,{big},-3,x&amp;y,[&quot;t&quot;, 1],{{&quot;k&quot;: &quot;v&quot;}},<i>,|9"
    # A generator is read when the template iterates it; a list that holds itself is fine.
    assert templates.render("items.html", items=(i * i for i in range(4))).startswith("0,1,4,9,|")
    looped: list = [1]
    looped.append(looped)
    assert templates.render("items.html", items=looped).endswith("|2")


def test_objects_are_read_by_attribute_then_item_but_not_private_names(templates: Templates, tmp_path: Path) -> None:
    (tmp_path / "o.html").write_text("{{ u.name }}|{{ u._secret }}|{{ u.__class__ }}|{{ d.key }}|{{ u }}")
    mine = Templates(tmp_path)
    name = random_text(random.Random())
    out = mine.render("o.html", u=User(name, 3), d={"key": "v"})
    assert out == f"{html.escape(name)}|||v|{html.escape(str(User(name, 3)))}"


def test_errors_say_what_went_wrong(templates: Templates, tmp_path: Path) -> None:
    with pytest.raises(TemplateNotFound, match="nope.html"):
        templates.render("nope.html")
    with pytest.raises(TemplateNotFound):
        templates.render("../outside.html")
    with pytest.raises(TemplateError, match=r"syntax error.*broken\.html:2"):
        templates.render("broken.html")
    with pytest.raises(TemplateError, match=r"fails\.html:1"):
        templates.render("fails.html")
    with pytest.raises(TypeError, match="keys must be str"):
        templates.render("plain.txt", {1: "x"})  # type: ignore[dict-item]
    with pytest.raises(NotADirectoryError, match="no template directory"):
        Templates(tmp_path / "absent")
    assert issubclass(TemplateNotFound, TemplateError)
