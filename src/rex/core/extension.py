"""Extensions: classes that packages define to plug into the application.

An extension point is a subclass of `Extension` (`Setting`, `Initialize`,
`Command`, ...).  Every subclass of it belongs to the package whose module
defines it; `all()` lists those of the packages in the active application, so
two applications with different packages see different extensions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from .application import PackageCollection

T = TypeVar("T", bound="type[Extension]")


class Extension:
    """Base class of all extensions."""

    _registry: list[type[Extension]] = []

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        Extension._registry.append(cls)

    @classmethod
    def all(cls: T) -> list[T]:
        """Concrete subclasses of this class from the active application's
        packages, in package dependency order, then definition order."""
        from .application import get_rex

        app = get_rex()
        key = ("extensions", cls)
        if key not in app.cache:
            app.cache[key] = cls._find(app.packages)
        return app.cache[key]

    @classmethod
    def _find(cls: T, packages: PackageCollection) -> list[T]:
        found = []
        for package in packages:
            for ext in Extension._registry:
                if (ext is not cls and issubclass(ext, cls)
                        and not ext.__dict__.get("abstract", False)
                        and packages.owner(ext.__module__) is package):
                    found.append(ext)
        return found

    @classmethod
    def top(cls: T) -> T:
        """The last subclass from the application's packages, else this class:
        how a later package overrides a default implementation."""
        found = cls.all()
        return found[-1] if found else cls
