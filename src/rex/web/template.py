"""Jinja2 templates kept in the packages' ``templates/`` directories."""

from __future__ import annotations

import os
from typing import Any

import jinja2

from rex.core import cached, get_rex


@cached
def get_jinja() -> jinja2.Environment:
    """The application's template environment; a template is named
    ``PACKAGE:FILE``, as in ``rex.attach_demo:index.html``."""
    loaders = {
        package.name: jinja2.FileSystemLoader(os.path.join(package.path, "templates"))
        for package in get_rex().packages
    }
    return jinja2.Environment(loader=jinja2.PrefixLoader(loaders, delimiter=":"),
                              autoescape=True, undefined=jinja2.StrictUndefined)


def render_template(template: str, /, **context: Any) -> str:
    """Renders a template with autoescaping."""
    return get_jinja().get_template(template).render(**context)
