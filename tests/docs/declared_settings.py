"""What the documentation tests share: the settings an application of
rex.attach_demo declares."""

from __future__ import annotations

import functools
import tempfile

from rex.core import Rex, Setting


@functools.cache
def demo_settings() -> tuple[tuple[type[Setting], str], ...]:
    """Every setting of an application of rex.attach_demo, in order, with
    the package that declares it."""
    with tempfile.TemporaryDirectory() as tmp, Rex("rex.attach_demo", attach_dir=tmp,
                                                   db=f"sqlite:///{tmp}/demo.sqlite") as app:
        return tuple((setting, app.packages.owner(setting.__module__).name)
                     for setting in Setting.all())


def declared(name: str) -> type[Setting]:
    """The setting of this name."""
    for setting, _ in demo_settings():
        if setting.name == name:
            return setting
    raise AssertionError(f"no such setting: {name}")
