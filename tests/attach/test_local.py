"""The local backend: layout, atomicity, errors, iteration."""

from __future__ import annotations

import hashlib
import io
import os
import random
import signal
import stat as stat_module
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import MISSING, crc32c_of, staged

import rex.attach.checksum
from rex.attach import DamagedError, LocalStorage
from rex.attach.local import CRC32C
from rex.core import Error
from rex.web import Upload


@pytest.fixture
def storage(attach_dir: Path) -> LocalStorage:
    storage = LocalStorage(str(attach_dir))
    storage.verify()
    return storage


def test_add_open_stat_remove(storage: LocalStorage) -> None:
    handle = storage.add("memo.txt", "Feed the cats!")
    with storage.open(handle) as stream:
        assert stream.read() == b"Feed the cats!"
    stat = storage.stat(handle)
    assert stat.st_size == 14
    assert abs(stat.st_mtime - os.stat(storage.path + handle).st_mtime) < 1e-6
    assert stat.etag.startswith('"') and stat.etag.endswith('"')
    assert handle in storage
    storage.remove(handle)
    assert handle not in storage
    assert list(storage) == []


@pytest.mark.parametrize("content", [b"\x00\xffbytes", "текст", io.BytesIO(b"file" * 100000)])
def test_add_takes_bytes_str_and_files(storage: LocalStorage, content) -> None:
    expected = content.getvalue() if isinstance(content, io.BytesIO) else \
        content.encode() if isinstance(content, str) else content
    handle = storage.add("x.bin", content)
    assert storage.open(handle).read() == expected


def test_add_reads_files_in_chunks(storage: LocalStorage) -> None:
    sizes = []

    class Source(io.RawIOBase):
        remaining = 5 << 20

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            sizes.append(size)
            n = min(self.remaining, size if size >= 0 else 1 << 30)
            self.remaining -= n
            return b"x" * n

    handle = storage.add("big.bin", Source())
    assert storage.stat(handle).st_size == 5 << 20
    assert max(sizes) <= 1 << 20 and -1 not in sizes


def test_files_are_private_and_temporary_area_is_left_clean(storage: LocalStorage) -> None:
    handle = storage.add("memo.txt", "x")
    mode = os.stat(storage.path + handle).st_mode
    assert stat_module.S_IMODE(mode) == 0o600
    assert staged(storage.path) == []


@pytest.mark.parametrize("method", ["open", "stat", "remove"])
def test_missing_attachment(storage: LocalStorage, method: str) -> None:
    with pytest.raises(Error) as info:
        getattr(storage, method)(MISSING)
    assert str(info.value) == f"Attachment does not exist:\n    {MISSING}"


def test_second_remove_says_it_does_not_exist(storage: LocalStorage) -> None:
    handle = storage.add("memo.txt", "x")
    storage.remove(handle)
    with pytest.raises(Error, match="Attachment does not exist:"):
        storage.remove(handle)


@pytest.mark.parametrize("method", ["open", "stat", "remove", "route"])
def test_ill_formed_handle_never_reaches_the_file_system(storage: LocalStorage, tmp_path: Path,
                                                         method: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    with pytest.raises(Error, match="Ill-formed attachment handle:"):
        getattr(storage, method)("/../secret.txt")
    assert secret.exists()


def test_same_name_differs_by_uuid(storage: LocalStorage) -> None:
    other = MISSING.replace("memo.txt", "other.txt")
    handle = storage.add("memo.txt", "x")
    assert storage.open(handle).read() == b"x"
    with pytest.raises(Error, match="does not exist"):
        storage.open(handle.rsplit("/", 1)[0] + "/other.txt")
    with pytest.raises(Error, match="does not exist"):
        storage.remove(handle.rsplit("/", 1)[0] + "/other.txt")
    assert storage.open(handle).read() == b"x"
    del other


def test_the_crc32c_is_an_attribute_of_the_file(storage: LocalStorage) -> None:
    """Set before the file is made durable and visible: nothing else is
    stored, and every path to the file sets it (a copy, a spooled upload)."""
    handle = storage.add("memo.txt", "Feed the cats!")
    assert os.listdir(storage.path + os.path.dirname(handle)) == ["memo.txt"]
    assert os.getxattr(storage.path + handle, CRC32C) == crc32c_of(b"Feed the cats!").encode()
    assert storage.stat(handle).crc32c == crc32c_of(b"Feed the cats!")
    assert staged(storage.path) == []


def test_a_spooled_upload_keeps_the_crc32c_computed_as_it_arrived(storage: LocalStorage) -> None:
    """Its file is renamed into place, not read again: the CRC32C recorded is
    the parser's (here a different one, which a full read then refuses)."""
    file, path = storage.spool()
    file.write(b"spooled")
    file.flush()
    upload = Upload("a.txt", "text/plain", file, path)
    upload.size, upload.crc32c = 7, crc32c_of(b"SPOOLED")
    handle = storage.add("a.txt", upload)
    upload.discard()
    assert storage.stat(handle).crc32c == crc32c_of(b"SPOOLED")
    with pytest.raises(DamagedError):
        storage.open(handle).read()


def test_record_crc32c_meeting_another_record(storage: LocalStorage, monkeypatch) -> None:
    """Another process records it first: the same CRC32C stands; a different
    one means the attachment or its record is damaged."""
    compute_now = rex.attach.checksum.compute
    for recorded, fails in [(crc32c_of(b"data"), False), (crc32c_of(b"DATA"), True)]:
        handle = storage.add("a.txt", b"data")
        path = storage.path + handle
        os.removexattr(path, CRC32C)

        def racing(file, copy=None, recorded=recorded, path=path):
            os.setxattr(path, CRC32C, recorded.encode())  # by the other process, meanwhile
            return compute_now(file, copy)

        monkeypatch.setattr(rex.attach.checksum, "compute", racing)
        if fails:
            with pytest.raises(DamagedError):
                storage.record_crc32c(handle)
        else:
            assert storage.record_crc32c(handle) == recorded
        monkeypatch.undo()
        assert storage.stat(handle).crc32c == recorded


def test_iteration_is_sorted_and_shows_only_complete_attachments(storage: LocalStorage) -> None:
    handles = sorted(storage.add(f"f{i}.txt", str(i)) for i in range(20))
    # Debris that must not show: a write in progress, junk files, bad names.
    (Path(storage.tmp) / "tmpabc").mkdir()
    (Path(storage.tmp) / "tmpabc" / "half.txt").write_text("half")
    (Path(storage.path) / "junk.txt").write_text("junk")
    (Path(storage.path) / "2024" / "01" / "01" / "not-a-uuid").mkdir(parents=True)
    assert list(storage) == handles


def test_failed_write_leaves_nothing(storage: LocalStorage) -> None:
    class Broken(io.RawIOBase):
        calls = 0

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            self.calls += 1
            if self.calls > 3:
                raise OSError("disk on fire")
            return b"x" * 1000

    with pytest.raises(OSError):
        storage.add("broken.bin", Broken())
    assert list(storage) == []
    assert staged(storage.path) == []


def test_crash_between_write_and_rename_leaves_nothing_visible(storage: LocalStorage,
                                                               monkeypatch) -> None:
    """A crash (here: a failing rename) before the attachment is moved into
    place leaves the storage as it was."""
    kept = storage.add("kept.txt", "kept")

    def crash(*args, **kwargs) -> None:
        raise SystemExit("power failure")

    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(SystemExit):
        storage.add("lost.txt", "lost")
    monkeypatch.undo()
    assert list(storage) == [kept]
    assert storage.open(kept).read() == b"kept"


WRITER = textwrap.dedent("""
    import hashlib, io, sys
    from rex.attach import LocalStorage

    storage = LocalStorage(sys.argv[1])
    stop_number, stop_offset = int(sys.argv[2]), int(sys.argv[3])

    def wait_for_kill():
        print("stopped", flush=True)
        sys.stdin.read()  # never returns: the test kills this process

    class Stopping(io.BytesIO):
        # Content that stops being read, for the kill, after stop_offset bytes.
        def read(self, size=-1):
            left = stop_offset - self.tell()
            if left == 0:
                wait_for_kill()
            return super().read(left if size < 0 else min(size, left))

    for i in range(1000):
        content = hashlib.sha256(str(i).encode()).digest() * 32768 * 4  # 4 MiB
        if i == stop_number and stop_offset >= 0:
            storage.add(f"{i}.bin", Stopping(content))  # never returns: killed in there
        handle = storage.add(f"{i}.bin", content)
        if i == stop_number:
            wait_for_kill()  # stored, not reported
        print(handle, flush=True)
""")
ATTACHMENT_SIZE = 4 << 20


def expected_content(handle: str) -> bytes:
    number = handle.rsplit("/", 1)[-1].removesuffix(".bin")
    return hashlib.sha256(number.encode()).digest() * 32768 * 4


# Where the writer is killed: in attachment NUMBER after OFFSET bytes of it,
# or (OFFSET -1) once it is stored but before the writer reports it.  Drawn
# once, from a fixed seed: the same points on every run.
_rng = random.Random(20240611)
KILL_POINTS = [(_rng.randrange(1, 6), _rng.randrange(1, ATTACHMENT_SIZE)),
               (_rng.randrange(1, 6), -1)]


@pytest.mark.parametrize("number, offset", KILL_POINTS, ids=["while-writing", "once-stored"])
def test_killed_writer_leaves_only_whole_attachments(storage: LocalStorage, number: int,
                                                     offset: int) -> None:
    """A writer killed with SIGKILL in the middle of its work: every
    attachment it reported is there, whole; nothing half-written is listed;
    the storage takes new attachments."""
    writer = subprocess.Popen([sys.executable, "-c", WRITER, storage.path, str(number), str(offset)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    reported = []
    for line in writer.stdout:  # type: ignore[union-attr]
        if line == "stopped\n":
            break
        reported.append(line.strip())
    else:
        raise AssertionError(f"the writer exited before its kill point: {writer.wait()}")
    writer.send_signal(signal.SIGKILL)
    writer.communicate()
    assert len(reported) == number
    listed = list(storage)
    if offset >= 0:
        assert sorted(listed) == sorted(reported)
        assert os.listdir(storage.tmp) != []  # the killed add()'s staging
    else:
        assert set(reported) < set(listed) and len(listed) == number + 1
    for handle in listed:
        with storage.open(handle) as stream:
            assert stream.read() == expected_content(handle), handle
    storage.sweep()  # the killed writer's staging directory, recognised by its free lock
    assert staged(storage.path) == []
    assert list(storage) == listed
    new = storage.add("after.txt", "after the crash")
    assert storage.open(new).read() == b"after the crash"


def test_sweep_removes_only_stale_staging_entries(storage: LocalStorage) -> None:
    stale_dir, stale_file = Path(storage.tmp, "tmpold"), Path(storage.tmp, "tmpspool")
    stale_dir.mkdir()
    (stale_dir / "part.bin").write_bytes(b"half")
    stale_file.write_bytes(b"half")
    live = Path(storage.tmp, "tmplive")
    live.mkdir()
    (live / "part.bin").write_bytes(b"growing")
    day_ago = time.time() - 25 * 3600
    for path in (stale_dir / "part.bin", stale_dir, stale_file, live):
        os.utime(path, (day_ago, day_ago))
    storage.verify()  # sweeps entries untouched for a day
    assert sorted(os.listdir(storage.tmp)) == ["tmplive"]


def test_reserved_handle_is_written_once(storage: LocalStorage) -> None:
    handle = storage.reserve("memo.txt")
    assert handle not in storage
    storage.write(handle, io.BytesIO(b"one"))
    with pytest.raises(Error, match="Attachment already exists:"):
        storage.write(handle, io.BytesIO(b"two"))
    assert storage.open(handle).read() == b"one"
    assert staged(storage.path) == []


def test_verify(tmp_path: Path) -> None:
    with pytest.raises(Error) as info:
        LocalStorage(str(tmp_path / "missing")).verify()
    assert str(info.value) == f"Attachment storage must be an existing directory:\n    {tmp_path}/missing"
    (tmp_path / "file").write_text("")
    with pytest.raises(Error, match="must be an existing directory"):
        LocalStorage(str(tmp_path / "file")).verify()
    with pytest.raises(Error, match="Attachment storage must be writable:\n    /proc"):
        LocalStorage("/proc").verify()


@pytest.fixture
def ramfs(tmp_path: Path) -> Iterator[Path]:
    """A ramfs, which keeps no extended attributes, mounted for the test (as
    root, or with sudo)."""
    path = tmp_path / "ramfs"
    path.mkdir()
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    subprocess.run([*sudo, "mount", "-t", "ramfs", "-o", "mode=0777", "ramfs", str(path)],
                   check=True)
    try:
        yield path
    finally:
        subprocess.run([*sudo, "umount", "-l", str(path)], check=True)


def test_a_store_that_cannot_keep_checksums_is_refused(ramfs: Path) -> None:
    with pytest.raises(Error) as info:
        LocalStorage(str(ramfs)).verify()
    assert str(info.value) == ("Attachment storage must support extended attributes (user.*), "
                               f"which keep checksums:\n    {ramfs}\n"
                               "Because:\n    Operation not supported")


def test_repr(attach_dir: Path) -> None:
    assert repr(LocalStorage(str(attach_dir))) == f"LocalStorage('{attach_dir}')"
