"""Validators and the Error type."""

from __future__ import annotations

import os

import pytest
from webob import Request

from rex.core import (BoolVal, ChoiceVal, Error, IntVal, MapVal, MaybeVal, PathVal, SeqVal,
                      StrVal)


def test_error_text_is_paragraphs_with_indented_payloads() -> None:
    error = Error("Expected a thing", "line 1\nline 2").wrap("While doing:", "it")
    assert str(error) == "Expected a thing\n    line 1\n    line 2\nWhile doing:\n    it"
    assert Error("Just a message").paragraphs == [("Just a message", None)]
    assert Error.__module__ == "rex.core"
    assert "rex.core.Error" in f"{Error.__module__}.{Error.__qualname__}"


def test_error_answers_400_with_its_text_escaped_for_browsers() -> None:
    error = Error("Bad value:", "<script>")
    plain = Request.blank("/").get_response(error)
    assert plain.status_int == 400
    assert plain.text == "Bad value:\n    <script>\n"
    html = Request.blank("/", headers={"Accept": "text/html"}).get_response(error)
    assert html.status_int == 400
    assert "&lt;script&gt;" in html.text and "<script>" not in html.text


def test_error_text_never_shows_a_url_password() -> None:
    error = Error("Cannot use:", "db=postgresql+psycopg://rex:p4ss w/o@rd@db.example/rex?x=1")
    error.wrap("With:", "['sqlite:////tmp/a:b.sqlite', 'mailto:ann@example.org']")  # no password
    error.wrap("Or:", "('https://ann:pw@example.org', 'bob@example.org')")
    assert str(error) == ("Cannot use:\n    db=postgresql+psycopg://rex:***@db.example/rex?x=1\n"
                          "With:\n    ['sqlite:////tmp/a:b.sqlite', 'mailto:ann@example.org']\n"
                          "Or:\n    ('https://ann:***@example.org', 'bob@example.org')")


@pytest.mark.parametrize("validate, value, expected", [
    (StrVal(), "x", "x"),
    (StrVal(r"\w+"), "abc_1", "abc_1"),
    (StrVal(), b"bytes", "bytes"),
    (IntVal(), "42", 42),
    (IntVal(0, 10), 10, 10),
    (BoolVal(), "yes", True),
    (BoolVal(), "false", False),
    (BoolVal(), True, True),
    (ChoiceVal("a", "b"), "b", "b"),
    (MaybeVal(IntVal()), None, None),
    (MaybeVal(IntVal()), "3", 3),
    (SeqVal(IntVal()), "[1, 2]", [1, 2]),
    (SeqVal(StrVal()), ("a",), ["a"]),
    (MapVal(StrVal(), IntVal()), "{a: 1}", {"a": 1}),
])
def test_validators_accept_and_normalize(validate, value, expected) -> None:
    assert validate(value) == expected


@pytest.mark.parametrize("validate, value, message", [
    (StrVal(r"\w+"), "a b", "Expected a string matching:\n    /\\w+/\nGot:\n    'a b'"),
    (StrVal(), 1, "Expected a string\nGot:\n    1"),
    (StrVal(), "a\0b", "Expected a string without NUL characters\nGot:\n    'a\\x00b'"),
    (IntVal(), "ten", "Expected an integer\nGot:\n    'ten'"),
    (IntVal(), True, "Expected an integer\nGot:\n    True"),
    (IntVal(0), -1, "Expected an integer no less than:\n    0\nGot:\n    -1"),
    (IntVal(0, 5), 6, "Expected an integer no greater than:\n    5\nGot:\n    6"),
    (BoolVal(), "maybe", "Expected a Boolean value\nGot:\n    'maybe'"),
    (ChoiceVal("a", "b"), "c", "Expected one of:\n    a, b\nGot:\n    'c'"),
    (SeqVal(), 5, "Expected a sequence\nGot:\n    5"),
    (SeqVal(IntVal()), [1, "x"], "Expected an integer\nGot:\n    'x'\nWhile validating sequence item\n    #2"),
    (MapVal(), [1], "Expected a mapping\nGot:\n    [1]"),
    (PathVal(), "", "Expected a non-empty path\nGot:\n    ''"),
    (StrVal(r"\w+", 3), "abcd", "Expected a string no longer than:\n    3 characters\nGot:\n    'abcd'"),
    (StrVal(r"\w+", 3), "a b", "Expected a string matching:\n    /\\w+/\nGot:\n    'a b'"),
    (StrVal(r"\w+"), "postgresql://u:pass/w0rd@h/x",
     "Expected a string matching:\n    /\\w+/\nGot:\n    'postgresql://u:***@h/x'"),
    (StrVal(r"\d+"), "x" * 5000, "Expected a string matching:\n    /\\d+/\nGot:\n    '" + "x" * 199 + "..."),
])
def test_validators_reject_with_what_was_expected_and_got(validate, value, message) -> None:
    with pytest.raises(Error) as info:
        validate(value)
    assert str(info.value) == message


def test_path_val_expands_cwd() -> None:
    assert PathVal()("{cwd}/x") == os.path.join(os.getcwd(), "x")


def test_validators_have_readable_reprs() -> None:
    assert repr(StrVal(r"\w+")) == "StrVal('\\\\w+')"
    assert repr(StrVal(r"\w+", 64)) == "StrVal('\\\\w+', 64)"
    assert repr(MaybeVal(IntVal(0, 10))) == "MaybeVal(IntVal(0, 10))"
    assert repr(MapVal(StrVal(), BoolVal())) == "MapVal(StrVal(), BoolVal())"
    assert repr(SeqVal(ChoiceVal("a", "b"))) == "SeqVal(ChoiceVal('a', 'b'))"
    assert repr(PathVal()) == "PathVal()"
