"""`templating`: one Jinja2 environment for the report site: every template compiles, values are HTML-escaped
unless marked safe, link targets are percent-encoded, and an undefined name is an error, not an empty string."""

import jinja2
import pytest

from sbir_utils import templating


def test_every_template_compiles():
    names = sorted(p.name for p in templating.TEMPLATES_DIR.iterdir() if p.suffix in (".html", ".css"))
    assert "report_index.html" in names and "gallery_page.html" in names
    for name in names:
        assert templating.environment().get_template(name).name == name


def test_values_are_escaped_unless_safe_and_links_quoted():
    env = templating.environment()
    assert env is templating.environment()  # one environment, built once
    page = env.from_string('<a href="{{ link | urlquote }}">{{ text }}</a>{{ table }}')
    html = page.render(link="photos/a b#1.png", text="<script>x</script>", table=templating.Markup("<td>1</td>"))
    assert html == '<a href="photos/a%20b%231.png">&lt;script&gt;x&lt;/script&gt;</a><td>1</td>'
    assert templating.escape("a & b") == "a &amp; b"


def test_an_undefined_name_raises():
    with pytest.raises(jinja2.UndefinedError, match="title"):
        templating.environment().from_string("<h1>{{ title }}</h1>").render()
    with pytest.raises(jinja2.UndefinedError):
        templating.render("back_link.html")
