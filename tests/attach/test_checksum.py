"""The CRC32C as recorded, and the reader that checks it at the end of a
full read."""

from __future__ import annotations

import io
import logging
import random

import pytest

from rex.attach import DamagedError
from rex.attach import checksum
from rex.attach.checksum import VerifiedReader, compute, encode, extend, is_crc32c, verified
from rex.core import UnavailableError

CONTENT = random.Random(5).randbytes(10_000)
HANDLE = "/2024/01/01/6f1c6ed5-3b5e-4b8e-9a53-2b2d2b6d1a2e/data.bin"


def test_the_crc32c_is_castagnolis_as_gcs_writes_it() -> None:
    # The check value of CRC-32C (RFC 3720, B.4): 0xE3069283 for "123456789".
    assert extend(0, b"123456789") == 0xE3069283
    assert encode(0xE3069283) == "4waSgw=="
    assert extend(extend(0, b"1234"), bytearray(b"56789")) == 0xE3069283
    assert compute(io.BytesIO(b"")) == ("AAAAAA==", 0)
    copy = io.BytesIO()
    assert compute(io.BytesIO(b"123456789"), copy=copy) == ("4waSgw==", 9)
    assert copy.getvalue() == b"123456789"


@pytest.mark.parametrize("value, valid", [
    ("4waSgw==", True), ("AAAAAA==", True), ("4waSgw=", False), ("4waSgw==\n", False),
    ("4waSgw4waSgw", False), ("!!!!!!==", False), (None, False), (b"4waSgw==", False),
])
def test_is_crc32c(value, valid: bool) -> None:
    assert is_crc32c(value) is valid


def reader(content: bytes = CONTENT, crc32c: str | None = None) -> VerifiedReader:
    crc32c = crc32c or encode(extend(0, content))
    return VerifiedReader(io.BytesIO(content), len(content), crc32c, HANDLE)


def damaged() -> VerifiedReader:
    return reader(CONTENT[:-1] + b"?", encode(extend(0, CONTENT)))


def test_a_full_read_of_intact_content_passes() -> None:
    for read in (lambda f: f.read(), lambda f: b"".join(iter(lambda: f.read(999), b""))):
        with reader() as file:
            assert read(file) == CONTENT
            assert file.read() == b""  # at the end, again: still fine


def test_a_full_read_of_damaged_content_raises_on_its_last_read(caplog) -> None:
    file = damaged()
    assert file.read(9999) == CONTENT[:9999]
    with caplog.at_level(logging.ERROR, logger="rex.attach"), pytest.raises(DamagedError) as info:
        file.read(1)
    assert isinstance(info.value, UnavailableError)
    assert str(info.value) == f"Attachment is damaged: its CRC32C does not match:\n    {HANDLE}"
    assert [record.getMessage() for record in caplog.records] == [
        f"Attachment is damaged: its CRC32C does not match: {HANDLE} "
        f"(recorded {encode(extend(0, CONTENT))}, read {encode(extend(0, CONTENT[:-1] + b'?'))})"]
    with pytest.raises(DamagedError):  # and every read after it
        file.read()
    assert len(caplog.records) == 1  # logged once


def test_readinto_is_checked_too() -> None:
    file = damaged()
    buffer = bytearray(len(CONTENT))
    with pytest.raises(DamagedError):
        file.readinto(buffer)


def test_reads_that_skip_part_of_the_file_are_not_checked() -> None:
    file = damaged()
    file.seek(100)
    assert file.read() == CONTENT[100:-1] + b"?"
    file.seek(-10, io.SEEK_END)
    assert file.tell() == len(CONTENT) - 10
    assert file.read() == CONTENT[-10:-1] + b"?"


def test_reading_on_from_the_checked_part_completes_the_check() -> None:
    file = damaged()
    assert file.read(100) == CONTENT[:100]
    file.seek(5000)
    file.read(10)  # not checked: past the checked part
    file.seek(50)
    file.read(100)  # overlaps it: not counted twice
    file.seek(100)
    with pytest.raises(DamagedError):
        file.read()


def test_an_empty_file_is_checked_on_its_first_read() -> None:
    assert reader(b"").read() == b""
    with pytest.raises(DamagedError):
        reader(b"", "4waSgw==").read()


def test_nothing_recorded_nothing_checked() -> None:
    file = io.BytesIO(b"data")
    assert verified(file, 4, None, HANDLE) is file
    assert isinstance(verified(file, 4, "4waSgw==", HANDLE), VerifiedReader)


def test_closing_closes_the_file() -> None:
    inner = io.BytesIO(CONTENT)
    with VerifiedReader(inner, len(CONTENT), "4waSgw==", HANDLE) as file:
        assert file.readable() and file.seekable() and not file.closed
        assert repr(file) == f"<VerifiedReader {HANDLE!r} 10000 bytes>"
    assert file.closed and inner.closed


def file_reader(tmp_path, content: bytes, crc32c: str) -> VerifiedReader:
    path = tmp_path / "data.bin"
    path.write_bytes(content)
    return VerifiedReader(open(path, "rb"), len(content), crc32c, HANDLE)


@pytest.fixture
def segment(monkeypatch) -> int:
    monkeypatch.setattr(checksum, "SEGMENT", 4096)
    return 4096


def test_sendfile_segments_cover_the_file_each_checked_before_it_is_given(tmp_path, segment) -> None:
    content = CONTENT  # 10,000 bytes: pieces of 4096, 4096, 1808
    with file_reader(tmp_path, content, encode(extend(0, content))) as file:
        pieces = list(file.sendfile_segments(0, len(content)))
        assert pieces == [(0, 4096), (4096, 4096), (8192, 1808)]
        assert file.read() == content  # the check is made: reading passes too


def test_sendfile_segments_withhold_the_last_piece_of_damaged_content(tmp_path, segment,
                                                                      caplog) -> None:
    content = b"?" + CONTENT[1:]  # damaged in the first piece, found at the last
    with file_reader(tmp_path, content, encode(extend(0, CONTENT))) as file:
        pieces = file.sendfile_segments(0, len(content))
        assert [next(pieces), next(pieces)] == [(0, 4096), (4096, 4096)]
        with caplog.at_level(logging.ERROR, logger="rex.attach"), pytest.raises(DamagedError):
            next(pieces)
        assert "Attachment is damaged" in caplog.text
        with pytest.raises(DamagedError):  # and every read after
            file.read()


def test_sendfile_segments_of_a_range_are_not_checked(tmp_path, segment) -> None:
    content = b"?" + CONTENT[1:]
    with file_reader(tmp_path, content, encode(extend(0, CONTENT))) as file:
        assert list(file.sendfile_segments(100, 9000)) == [(100, 9000)]
        assert file.read(100) == content[:100]  # read in order: checked
        pieces = file.sendfile_segments(100, 9900)  # the rest: the check goes on
        assert [next(pieces), next(pieces)] == [(100, 4096), (4196, 4096)]
        with pytest.raises(DamagedError):
            next(pieces)
