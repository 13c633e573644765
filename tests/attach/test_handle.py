"""File name sanitizing and handle checking."""

from __future__ import annotations

import re

import pytest

from rex.attach import check_handle, sanitize_filename
from rex.attach.handle import new_handle
from rex.core import Error


@pytest.mark.parametrize("original, name", [
    ("", "_.dat"),
    ("/etc/passwd", "passwd.dat"),
    ("Les Misérables.epub", "Les_Misérables.epub"),
    ("memo.txt", "memo.txt"),
    ("C:\\Users\\ann\\report 2.pdf", "report_2.pdf"),
    (".bashrc", "bashrc.dat"),
    ("..", "_.dat"),
    ("a/..", "_.dat"),
    ("a&b;c<d>.txt", "abcd.txt"),
    ("archive.tar.gz", "archive.tar.gz"),
    ("name.", "name.dat"),
    ("tab\there.txt", "tab_here.txt"),
    ("e\u0301.txt", "é.txt"),  # NFC
])
def test_sanitize_filename(original: str, name: str) -> None:
    assert sanitize_filename(original) == name


def test_sanitize_filename_fits_128_bytes_and_keeps_the_extension() -> None:
    name = sanitize_filename("é" * 200 + ".pdf")
    assert name.endswith(".pdf")
    assert len(name.encode()) <= 128
    assert len(name.encode()) >= 126
    assert sanitize_filename(name) == name


def test_new_handles_are_fresh_and_well_formed() -> None:
    one, two = new_handle("My File.txt"), new_handle("My File.txt")
    assert one != two
    assert re.fullmatch(r"/\d{4}/\d{2}/\d{2}/[0-9a-f-]{36}/My_File\.txt", one)
    assert check_handle(one) == one


@pytest.mark.parametrize("handle", [
    "", "memo.txt", "/2024/01/01/not-a-uuid/memo.txt",
    "/2024/01/01/6f1c6ed5-3b5e-4b8e-9a53-2b2d2b6d1a2e/../../../etc/passwd",
    "/2024/01/01/6f1c6ed5-3b5e-4b8e-9a53-2b2d2b6d1a2e/.hidden",
    "/2024/01/01/6f1c6ed5-3b5e-4b8e-9a53-2b2d2b6d1a2e/a b.txt",
    "/2024/01/01/6f1c6ed5-3b5e-4b8e-9a53-2b2d2b6d1a2e/memo.txt/",
    "/2024/01/01/6f1c6ed5-3b5e-4b8e-9a53-2b2d2b6d1a2e/memo.txt\n",
    "2024/01/01/6f1c6ed5-3b5e-4b8e-9a53-2b2d2b6d1a2e/memo.txt",
    "/2024/1/01/6f1c6ed5-3b5e-4b8e-9a53-2b2d2b6d1a2e/memo.txt",
    "/2024/01/01/6F1C6ED5-3B5E-4B8E-9A53-2B2D2B6D1A2E/memo.txt",
])
def test_ill_formed_handles_are_refused(handle: str) -> None:
    with pytest.raises(Error) as info:
        check_handle(handle)
    assert str(info.value).startswith("Ill-formed attachment handle:")


def test_non_string_handle_is_refused_with_its_repr() -> None:
    with pytest.raises(Error, match=r"Ill-formed attachment handle:\n    None"):
        check_handle(None)
