"""A package for the kernel's tests: settings, a check, a dependency."""

from rex.core import Error, Initialize, IntVal, MaybeVal, PathVal, Setting, StrVal, get_settings

REQUIRES = ("rexcoretest.base",)


class NameSetting(Setting):
    """A mandatory name."""

    name = "test_name"
    validate = StrVal(r"[a-z]+")


class SizeSetting(Setting):
    """A size, overridden by this package's settings.yaml."""

    name = "test_size"
    validate = IntVal(0)
    default = 1


class PathSetting(Setting):
    """A path."""

    name = "test_path"
    validate = MaybeVal(PathVal())
    default = None


class TokenSetting(Setting):
    """A secret whose name does not say so: only `secret` hides it."""

    name = "test_token"
    validate = MaybeVal(StrVal(r"\w{8,}"))
    default = None
    secret = True


class RefuseBad(Initialize):
    """Refuses the name 'bad'."""

    def __call__(self) -> None:
        if get_settings().test_name == "bad":
            raise Error("Got a bad name:", get_settings().test_name)
