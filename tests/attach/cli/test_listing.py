"""``rex attach ls`` and ``stat`` as subprocesses, on every backend."""

from __future__ import annotations

import datetime
import json

from cli_store import Store

CONTENTS = {"a.txt": b"first", "b.bin": b"\x00" * 70_000, "c.txt": b""}


def add_all(store: Store) -> dict[str, bytes]:
    """Adds `CONTENTS`; returns the content of each handle."""
    storage = store.storage
    return {storage.add(name, content): content for name, content in CONTENTS.items()}


def test_ls_lists_sorted_handles_under_a_prefix(store: Store) -> None:
    added = add_all(store)
    handles = sorted(added)
    listed = store.run("ls")
    assert (listed.status, listed.lines, listed.err) == (0, handles, "")
    one = handles[1]
    assert store.run("ls", one[:20]).lines == [one]  # the day and the start of its UUID
    assert store.run("ls", one[1:20]).lines == [one]  # the leading / may be left out
    assert store.run("ls", one[:11]).lines == handles  # /YYYY/MM/DD
    assert store.run("ls", "/1999").lines == []
    assert store.run("ls", "/9999").lines == []
    json_lines = store.run("ls", "--json").lines
    assert [json.loads(line) for line in json_lines] == [{"handle": h} for h in handles]


def test_ls_long_and_stat_show_size_time_and_checksum(store: Store) -> None:
    added = add_all(store)
    handles = sorted(added)
    now = datetime.datetime.now(datetime.timezone.utc)
    long = store.run("ls", "--long", "--quiet")
    assert long.status == 0 and long.err == ""
    for line, handle in zip(long.lines, handles, strict=True):
        size, mtime, checksum, shown = line.split()
        assert shown == handle and int(size) == len(added[handle])
        assert checksum == crc32c_of(added[handle])
        modified = datetime.datetime.strptime(mtime, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc)
        assert abs((modified - now).total_seconds()) < 600  # a time of today, in UTC
    stat = store.run("stat", handles[2], handles[0])
    assert stat.status == 0 and stat.lines == [long.lines[2], long.lines[0]]
    items = [json.loads(line) for line in store.run("ls", "--long", "--json", "-q").lines]
    assert [item["handle"] for item in items] == handles
    for item in items:
        assert item["size"] == len(added[item["handle"]])
        assert item["crc32c"] == crc32c_of(added[item["handle"]])
        assert item["etag"] == store.storage.stat(item["handle"]).etag
    assert [json.loads(line) for line in store.run("stat", "--json", *handles).lines] == items


def test_ls_long_shows_progress_unless_quiet(store: Store) -> None:
    add_all(store)
    shown = store.run("ls", "--long")
    assert len(shown.lines) == 3
    # Standard error is not a terminal here: plain lines, the last one at the end.
    assert shown.err.splitlines()[-1].startswith("ls: 3/3 files, 68.4 KiB, ")
    assert store.run("ls", "--long", "--quiet").err == ""


def test_stat_of_what_is_not_there(store: Store) -> None:
    handle = store.storage.add("a.txt", "a")
    missing = handle.replace("/a.txt", "/b.txt")
    result = store.run("stat", handle, missing)
    assert result.status == 1 and len(result.lines) == 1 and result.lines[0].endswith(handle)
    assert result.err == f"rex: Attachment does not exist:\n    {missing}\n"
    assert store.run("stat", "not-a-handle").status == 2
    assert store.run("stat").status == 2
from helpers import crc32c_of
