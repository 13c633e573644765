"""``rex attach add``, ``cat`` and ``rm`` as subprocesses, on every backend."""

from __future__ import annotations

import random
from pathlib import Path

from cli_store import Store


def test_add_files_and_stdin_then_cat(store: Store, tmp_path: Path) -> None:
    memo = tmp_path / "Visit 1 memo.txt"
    memo.write_bytes(b"Feed the cats!")
    scan = tmp_path / "scan.bin"
    scan.write_bytes(random.Random(8).randbytes(3 << 20))  # read and written in chunks
    added = store.run("add", str(memo), str(scan))
    assert added.status == 0, added.err
    memo_handle, scan_handle = added.lines
    assert memo_handle.endswith("/Visit_1_memo.txt") and scan_handle.endswith("/scan.bin")
    piped = store.run("add", "-", "--name", "From stdin.txt", input=b"\x00piped\xff")
    assert piped.status == 0 and piped.out.strip().endswith("/From_stdin.txt")
    assert store.run_bytes("cat", memo_handle) == b"Feed the cats!"
    assert store.run_bytes("cat", scan_handle) == scan.read_bytes()
    assert store.run_bytes("cat", piped.out.strip()) == b"\x00piped\xff"
    assert sorted(store.storage) == sorted([memo_handle, scan_handle, piped.out.strip()])


def test_add_refuses_what_it_cannot_do(store: Store, tmp_path: Path) -> None:
    missing = store.run("add", str(tmp_path / "no-such-file.txt"))
    assert missing.status == 2 and f"No such file: {tmp_path}/no-such-file.txt" in missing.err
    (tmp_path / "a.txt").write_text("a")
    two_names = store.run("add", str(tmp_path / "a.txt"), str(tmp_path / "a.txt"), "--name", "x")
    assert two_names.status == 2 and "--name is for one FILE only" in two_names.err
    assert list(store.storage) == []


def test_cat_of_what_is_not_there(store: Store) -> None:
    missing = store.run("cat", MISSING)
    assert (missing.status, missing.out) == (1, "")
    assert missing.err == f"rex: Attachment does not exist:\n    {MISSING}\n"
    ill_formed = store.run("cat", "/../../etc/passwd")
    assert ill_formed.status == 2
    assert ill_formed.err == "rex: Ill-formed attachment handle:\n    /../../etc/passwd\n"
    assert store.run("cat").status == 2  # no handle


def test_rm_asks_and_removes_for_good(store: Store) -> None:
    storage = store.storage
    first, second = storage.add("a.txt", "a"), storage.add("b.txt", "b")
    store.add_rows({"other": MISSING})  # a record, but not of these: no refusal
    unanswered = store.run("rm", first)  # no terminal, nothing on stdin
    assert unanswered.status == 1 and "Remove 1 attachment for good?" in unanswered.err
    assert first in storage
    declined = store.run("rm", first, second, input=b"n\n")
    assert declined.status == 1 and "Remove 2 attachments for good?" in declined.err
    assert first in storage and second in storage
    accepted = store.run("rm", first, input=b"y\n")
    assert accepted.status == 0 and accepted.lines == [f"removed {first}"]
    assert first not in storage and second in storage
    again = store.run("rm", first, second, "--yes")
    assert again.status == 1 and again.lines == [f"removed {second}"]
    assert f"Attachment does not exist:\n    {first}" in again.err
    assert list(storage) == []
    assert store.run("add", "-", input=b"x").status == 0  # removal leaves the store usable


def test_rm_refuses_a_referenced_attachment(store: Store) -> None:
    storage = store.storage
    kept, free = storage.add("kept.txt", "kept"), storage.add("free.txt", "free")
    store.add_rows({"k": kept})
    refused = store.run("rm", free, kept, "--yes")
    assert refused.status == 1
    assert refused.err == ("rex: Refusing to remove attachments that records reference "
                           f"(--force removes them anyway):\n    {kept}\n")
    assert kept in storage and free in storage  # none removed
    forced = store.run("rm", kept, "--yes", "--force")
    assert forced.status == 0 and kept not in storage and free in storage
from helpers import MISSING
