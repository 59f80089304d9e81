"""Topic pages as HTML: every value escaped (templates autoescape), no script, no remote asset."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from jinja2 import DictLoader, Environment, StrictUndefined

from ._model import TopicPageData
from ._text import blocks

PRODUCT = "Magnesium safety CDS service"

_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;max-width:52rem;margin:0 auto;padding:1rem 1.5rem;
color:#1b1b1b}h1{font-size:1.6rem;margin:.5rem 0}
h2{font-size:1.2rem;margin-top:1.8rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #ccc;padding:.35rem .5rem;
text-align:left;vertical-align:top}th{background:#f3f3f3;width:14rem}
.meta{color:#555;font-size:.9rem}code{background:#f3f3f3;padding:0 .2rem}
"""

_BASE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}{% endblock %} | {{ product }}</title>
<style>{{ style }}</style>
</head>
<body>
{% block body %}{% endblock %}
<footer>
<p class="meta">Content version {{ version.version }}, released {{ version.released }}
(fingerprint <code>{{ version.fingerprint }}</code>). {{ product }}.</p>
</footer>
</body>
</html>
"""

_MACROS = """
{% macro text(value) %}
{% for block in blocks(value) %}
{% if block.kind == "ul" %}
<ul>
{% for item in block.items %}
<li>{{ item }}</li>
{% endfor %}
</ul>
{% else %}
<p>{{ block.items[0] }}</p>
{% endif %}
{% endfor %}
{% endmacro %}
"""

_TOPIC = """{% extends "base" %}
{% block title %}{{ page.display }}{% endblock %}
{% block body %}
{% from "macros" import text %}
<header>
<p class="meta"><a href="{{ index_href }}">All topics</a></p>
<h1>{{ page.display }}</h1>
<p class="meta">Topic <code>{{ page.code }}</code>; indicators: {{ page.indicators | join(", ") }}
{%- if not page.enabled %}; switched off at this site{% endif %}.</p>
</header>
<main>
<section id="purpose">
<h2>What it does</h2>
{{ text(page.purpose) }}
</section>
<section id="for-whom">
<h2>For whom</h2>
{{ text(page.for_whom) }}
</section>
<section id="fires-when">
<h2>When it fires</h2>
{{ text(page.fires_when) }}
</section>
<section id="advises">
<h2>What it advises</h2>
{{ text(page.advises) }}
</section>
<section id="sources">
<h2>Sources</h2>
<ul>
{% for source in page.sources %}
<li id="source-{{ source.key }}"><strong>{{ source.key }}</strong>: {{ source.label }}
{%- if source.url %} <a href="{{ source.url }}">{{ source.url }}</a>{% endif %}</li>
{% endfor %}
</ul>
</section>
<section id="hti1">
<h2>Source attributes (ONC HTI-1)</h2>
<p class="meta">The source attributes of a decision support intervention, 45 CFR 170.315(b)(11).</p>
<table>
<tbody>
<tr><th scope="row">Bibliographic citation</th><td>
{%- for source in page.sources %}<a href="#source-{{ source.key }}">{{ source.key }}</a>
{%- if not loop.last %}, {% endif %}{% endfor %} (listed under Sources)</td></tr>
<tr><th scope="row">Developer</th><td>{{ page.hti1.developer }}</td></tr>
<tr><th scope="row">Funding source</th><td>{{ page.hti1.funding_source }}</td></tr>
<tr><th scope="row">Release date</th><td>{{ page.hti1.release_date }}</td></tr>
<tr><th scope="row">Last revision date</th><td>{{ page.hti1.last_revision_date }}</td></tr>
{% for key, label, use in page.hti1.uses_list() %}
<tr id="uses-{{ key }}"><th scope="row">Uses {{ label | lower }}</th>
<td>{% if use.used %}Yes. {{ use.how }}{% else %}No{% endif %}</td></tr>
{% endfor %}
</tbody>
</table>
</section>
</main>
{% endblock %}
"""

_INDEX = """{% extends "base" %}
{% block title %}Topics{% endblock %}
{% block body %}
<header>
<h1>Card topics</h1>
<p class="meta">What each card topic does, when it fires with this site's thresholds, what it
advises, its sources and its HTI-1 source attributes.</p>
</header>
<main>
<table>
<thead><tr><th scope="col">Topic</th><th scope="col">What it does</th></tr></thead>
<tbody>
{% for page in pages %}
<tr><th scope="row"><a href="{{ href(page.code) }}">{{ page.display }}</a><br>
<code>{{ page.code }}</code></th><td>{{ page.purpose }}</td></tr>
{% endfor %}
</tbody>
</table>
</main>
{% endblock %}
"""


def _environment() -> Environment:
    env = Environment(
        loader=DictLoader({"base": _BASE, "macros": _MACROS, "topic": _TOPIC, "index": _INDEX}),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(product=PRODUCT, style=_STYLE.strip(), blocks=blocks)
    return env


_ENV = _environment()


def topic_html(page: TopicPageData, *, index_href: str) -> str:
    return _ENV.get_template("topic").render(page=page, version=page.version, index_href=index_href)


def index_html(pages: Mapping[str, TopicPageData], *, href: Callable[[str], str]) -> str:
    listed = list(pages.values())
    if not listed:
        raise ValueError("no topics")
    return _ENV.get_template("index").render(pages=listed, version=listed[0].version, href=href)
