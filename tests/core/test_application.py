"""Rex: packages, settings, initialization, the active application."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "pkgs"))

from rex.core import Error, Rex, cached, get_rex, get_settings  # noqa: E402


def test_settings_come_from_defaults_then_package_files_then_parameters() -> None:
    app = Rex("rexcoretest", test_name="abc")
    with app:
        settings = get_settings()
    assert settings.test_name == "abc"
    assert settings.test_size == 10  # rexcoretest/settings.yaml over the default 1
    assert settings.test_tags == ["base"]  # rexcoretest/base/settings.yaml
    assert Rex("rexcoretest", test_name="abc", test_size="7").settings.test_size == 7


def test_packages_load_dependencies_first() -> None:
    names = [package.name for package in Rex("rexcoretest", test_name="x").packages]
    assert names == ["rex.core", "rexcoretest.base", "rexcoretest"]


def test_path_settings_expand_cwd_and_become_absolute() -> None:
    app = Rex("rexcoretest", test_name="x", test_path="{cwd}/a/../b")
    assert app.settings.test_path == os.path.join(os.getcwd(), "b")
    assert Rex("rexcoretest", test_name="x", test_path="rel").settings.test_path == os.path.abspath("rel")


def test_unknown_setting_is_an_error() -> None:
    with pytest.raises(Error) as info:
        Rex("rexcoretest", test_name="x", test_nme="y")
    assert str(info.value).startswith("Got unknown setting:\n    test_nme\n")


def test_bad_value_names_the_setting_the_expectation_and_the_value() -> None:
    with pytest.raises(Error) as info:
        Rex("rexcoretest", test_name="x", test_size="ten")
    assert str(info.value) == (
        "Expected an integer\nGot:\n    'ten'\nWhile validating setting:\n    test_size\n"
        "Declared in:\n    parameters\n"
        "While initializing RexDB application:\n    rexcoretest\n"
        "With parameters:\n    test_name: 'x'\n    test_size: 'ten'")


def test_missing_mandatory_setting_is_an_error() -> None:
    with pytest.raises(Error, match="Missing mandatory setting:\n    test_name"):
        Rex("rexcoretest")


def test_unknown_package_is_an_error() -> None:
    with pytest.raises(Error, match="Cannot import package:\n    rex.nonexistent"):
        Rex("rex.nonexistent")


def test_initialization_checks_run_and_their_errors_are_wrapped() -> None:
    from rexcoretest.base import INITIALIZED

    Rex("rexcoretest", test_name="checked")
    assert INITIALIZED[-1] == "checked"
    with pytest.raises(Error) as info:
        Rex("rexcoretest", test_name="bad")
    assert str(info.value) == (
        "Got a bad name:\n    bad\n"
        "While initializing RexDB application:\n    rexcoretest\n"
        "With parameters:\n    test_name: 'bad'")


def test_with_app_nests_and_is_per_thread_and_per_task() -> None:
    one = Rex("rexcoretest", test_name="one")
    two = Rex("rexcoretest", test_name="two")
    with pytest.raises(RuntimeError):
        get_rex()
    with one:
        assert get_settings().test_name == "one"
        with two:
            assert get_settings().test_name == "two"
            seen = []
            thread = threading.Thread(target=lambda: seen.append(_active_name()))
            thread.start()
            thread.join()
            assert seen == [None]  # a new thread has no active application
        assert get_settings().test_name == "one"

    async def in_task(app: Rex, delay: float) -> str:
        with app:
            await asyncio.sleep(delay)
            return get_settings().test_name

    async def both() -> list[str]:
        return await asyncio.gather(in_task(one, 0.02), in_task(two, 0.01))

    assert asyncio.run(both()) == ["one", "two"]


def _active_name() -> str | None:
    try:
        return get_settings().test_name
    except RuntimeError:
        return None


def test_cached_is_per_application_and_per_arguments() -> None:
    calls = []

    @cached
    def compute(value: int) -> tuple[str, int]:
        calls.append(value)
        return (get_settings().test_name, value)

    one = Rex("rexcoretest", test_name="one")
    two = Rex("rexcoretest", test_name="two")
    with one:
        assert compute(1) == ("one", 1)
        assert compute(1) == ("one", 1)
        assert compute(2) == ("one", 2)
    with two:
        assert compute(1) == ("two", 1)
    assert calls == [1, 2, 1]


def test_application_is_a_wsgi_application() -> None:
    from webob import Request

    response = Request.blank("/").get_response(Rex("rexcoretest", test_name="x"))
    assert response.status_int == 404  # rex.core alone answers nothing


def test_repr_hides_secrets() -> None:
    app = Rex("rexcoretest", test_name="x", test_token="T0ken_kept_private")
    assert app.settings.test_token == "T0ken_kept_private"
    assert repr(app) == "Rex('rexcoretest', test_name='x', test_token='***')"
    assert "T0ken_kept_private" not in str(app)


def test_a_rejected_secret_is_never_shown() -> None:
    with pytest.raises(Error) as info:
        Rex("rexcoretest", test_name="x", test_token="T0ken kept private")
    assert str(info.value) == (
        "Expected a string matching:\n    /\\w{8,}/\nGot:\n    '***'\n"
        "While validating setting:\n    test_token\nDeclared in:\n    parameters\n"
        "While initializing RexDB application:\n    rexcoretest\n"
        "With parameters:\n    test_name: 'x'\n    test_token: '***'")


@pytest.mark.parametrize("name, value", [
    ("attach_s3_secret_key", "Sekr1t with spaces"),
    ("attach_s3_secret_key", ["Sekr1t-in-a-list"]),
    ("attach_secret", "Sekr1t-short"),
])
def test_a_rejected_attach_secret_is_never_shown(tmp_path, name: str, value) -> None:
    with pytest.raises(Error) as info:
        Rex("rex.attach", attach_dir=str(tmp_path), **{name: value})
    assert f"While validating setting:\n    {name}\n" in str(info.value)
    assert "Got:\n    '***'\n" in str(info.value)
    assert "sekr1t" not in str(info.value).lower()


def test_a_database_password_is_never_shown() -> None:
    for db in ["postgresql://u:hunter2secret@127.0.0.1:port/x",  # refused by make_url()
               "postgresql+psycopg://u:hunter2secret@127.0.0.1:99999/x",  # by the driver
               "postgresql+psycopg://u:hunter2secret/with/slashes@127.0.0.1:99999/x"]:
        with pytest.raises(Error) as info:
            Rex("rex.db", db=db)
        assert "u:***@127.0.0.1:" in str(info.value)
        assert "hunter2" not in str(info.value) and "slashes" not in str(info.value), db


def test_settings_from_named_sources_say_where_a_bad_one_came_from() -> None:
    app = Rex.from_sources(["rexcoretest"], [("/etc/a.yaml", {"test_name": "a", "test_size": 1}),
                                             ("the command line", {"test_name": "b"})])
    assert (app.settings.test_name, app.settings.test_size) == ("b", 1)
    with pytest.raises(Error) as info:
        Rex.from_sources(["rexcoretest"], [("/etc/a.yaml", {"test_name": "a", "test_size": "x"})])
    assert "While validating setting:\n    test_size\nDeclared in:\n    /etc/a.yaml\n" in str(
        info.value)
    with pytest.raises(Error) as info:
        Rex("rexcoretest", test_name="x", test_nmae="y")
    assert str(info.value).startswith("Got unknown setting:\n    test_nmae\nDeclared in:\n"
                                      "    parameters\nDid you mean:\n    test_name\n")
