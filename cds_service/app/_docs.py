"""``/docs``: the OpenAPI document rendered as one HTML page on the server.

No scripts, no CDN, nothing fetched: the page's Content-Security-Policy allows only its own
inline style, so it works offline and on a locked-down network.
"""

from __future__ import annotations

from html import escape
from typing import Any

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_METHODS = ("get", "post", "put", "patch", "delete", "options", "head")
_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:0}h2{margin-top:2em;border-top:1px solid #ddd;padding-top:1em}
code,.path{font-family:ui-monospace,monospace}
.method{display:inline-block;min-width:4.5em;font-weight:bold;text-transform:uppercase}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{text-align:left;vertical-align:top;border-bottom:1px solid #eee;padding:.25em .5em}
.muted{color:#666}nav li{list-style:none}nav ul{padding-left:0}
"""


def _anchor(kind: str, name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in name).strip("-")
    return f"{kind}-{cleaned}"


def _type(schema: dict[str, Any]) -> str:
    """A short HTML rendering of a JSON Schema type, with links to named schemas."""
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return f'<a href="#{_anchor("schema", name)}">{escape(name)}</a>'
    if "const" in schema:
        return f"<code>{escape(repr(schema['const']))}</code>"
    if "enum" in schema:
        return "one of " + ", ".join(f"<code>{escape(str(v))}</code>" for v in schema["enum"])
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            parts = [_type(part) for part in schema[combinator]]
            return (" and " if combinator == "allOf" else " or ").join(parts)
    kind = schema.get("type")
    if kind == "array":
        return "array of " + _type(schema.get("items", {}))
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return "object of " + _type(schema["additionalProperties"])
    if isinstance(kind, list):
        return " or ".join(escape(str(k)) for k in kind)
    return escape(str(kind)) if kind else "any JSON"


def _body(content: dict[str, Any]) -> str:
    return "; ".join(
        f"<code>{escape(media)}</code>: {_type(item.get('schema', {}))}"
        for media, item in content.items()
    )


def _operation(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    out = [
        f'<h2 id="{_anchor(method, path)}"><span class="method">{method}</span> '
        f'<span class="path">{escape(path)}</span></h2>',
        f"<p>{escape(operation.get('summary', ''))}</p>",
    ]
    if operation.get("description"):
        out.append(f"<p>{escape(operation['description'])}</p>")
    if operation.get("security"):
        out.append('<p class="muted">Needs a bearer JWT from a trusted client.</p>')
    parameters = operation.get("parameters", [])
    if parameters:
        out.append("<table><tr><th>parameter</th><th>in</th><th>type</th><th>about</th></tr>")
        for parameter in parameters:
            out.append(
                f"<tr><td><code>{escape(parameter['name'])}</code></td>"
                f"<td>{escape(parameter.get('in', ''))}</td>"
                f"<td>{_type(parameter.get('schema', {}))}</td>"
                f"<td>{escape(parameter.get('description', ''))}</td></tr>"
            )
        out.append("</table>")
    body = operation.get("requestBody", {}).get("content")
    if body:
        out.append(f"<p>Request body: {_body(body)}</p>")
    out.append("<table><tr><th>status</th><th>meaning</th><th>body</th></tr>")
    for status, response in operation.get("responses", {}).items():
        out.append(
            f"<tr><td>{escape(str(status))}</td>"
            f"<td>{escape(response.get('description', ''))}</td>"
            f"<td>{_body(response.get('content', {}))}</td></tr>"
        )
    out.append("</table>")
    return out


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    out = [f'<h3 id="{_anchor("schema", name)}"><code>{escape(name)}</code></h3>']
    if schema.get("description"):
        out.append(f"<p>{escape(schema['description'])}</p>")
    properties = schema.get("properties", {})
    if not properties:
        out.append(f"<p>{_type(schema)}</p>")
        return out
    required = set(schema.get("required", ()))
    out.append("<table><tr><th>field</th><th>type</th><th></th><th>about</th></tr>")
    for field, spec in properties.items():
        out.append(
            f"<tr><td><code>{escape(field)}</code></td><td>{_type(spec)}</td>"
            f"<td>{'required' if field in required else ''}</td>"
            f"<td>{escape(str(spec.get('description', '')))}</td></tr>"
        )
    out.append("</table>")
    return out


def render_docs(document: dict[str, Any]) -> str:
    """The whole OpenAPI ``document`` as a self-contained HTML page."""
    info = document.get("info", {})
    title = escape(str(info.get("title", "API")))
    operations = [
        (path, method, item[method])
        for path, item in document.get("paths", {}).items()
        for method in _METHODS
        if method in item
    ]
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{title}</h1>",
        f'<p class="muted">version {escape(str(info.get("version", "")))} · '
        'machine-readable: <a href="openapi.json">openapi.json</a></p>',
        f"<p>{escape(str(info.get('description', '')))}</p>",
        "<nav><ul>",
    ]
    for path, method, operation in operations:
        out.append(
            f'<li><a href="#{_anchor(method, path)}"><span class="method">{method}</span> '
            f'<span class="path">{escape(path)}</span></a> '
            f'<span class="muted">{escape(operation.get("summary", ""))}</span></li>'
        )
    out.append("</ul></nav>")
    for path, method, operation in operations:
        out += _operation(path, method, operation)
    out.append("<h2>Schemas</h2>")
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        out += _schema(name, schema)
    out.append("</body></html>")
    return "\n".join(out)
