"""The dependency of rexcoretest: a setting and an initialization log."""

from rex.core import Initialize, SeqVal, Setting, StrVal, get_settings

INITIALIZED: list[str] = []


class TagsSetting(Setting):
    """Tags, default from this package's settings.yaml."""

    name = "test_tags"
    validate = SeqVal(StrVal())
    default: list[str] = []


class LogInitialize(Initialize):
    def __call__(self) -> None:
        INITIALIZED.append(get_settings().test_name)
