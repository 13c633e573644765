"""``rex attach verify`` as a subprocess, on every backend: each
attachment read in full and compared with the CRC32C its store recorded
(`Stat.crc32c`); one stored before checksums were has none."""

from __future__ import annotations

import random
import uuid

import pytest
from cli_store import Store
from helpers import crc32c_of

RNG = random.Random(1808)
CONTENTS = [b"", b"x", RNG.randbytes(100_000), RNG.randbytes(5 << 20)]


def summary(ok: int = 0, damaged: int = 0, unchecked: int = 0, failed: int = 0,
            recorded: int | None = None) -> str:
    total = ok + damaged + unchecked + failed + (recorded or 0)
    text = (f"verified {total} attachment{'s' if total != 1 else ''}: {ok} ok, {damaged} damaged, "
            f"{unchecked} without a checksum")
    return text + (f", {recorded} recorded" if recorded is not None else "") + f", {failed} failed"


def test_verify_reads_every_attachment(store: Store) -> None:
    storage = store.storage
    handles = sorted(storage.add(f"{i}.bin", content) for i, content in enumerate(CONTENTS))
    result = store.run("verify", "--jobs", "3")
    assert (result.status, result.lines) == (0, [summary(ok=4)])
    assert result.err.splitlines()[-1].startswith("verify: 4/4 files, 5.1 MiB, ")
    one = store.run("verify", handles[2][:20], "--quiet")
    assert (one.lines, one.err) == ([summary(ok=1)], "")


DAMAGEABLE = [pytest.param("local"), pytest.param("s3", marks=pytest.mark.s3)]


@pytest.mark.parametrize("backend", DAMAGEABLE, indirect=True)
def test_verify_reports_a_flipped_byte_with_both_checksums(store: Store) -> None:
    storage = store.storage
    sound = storage.add("sound.bin", CONTENTS[2])
    damaged = storage.add("damaged.bin", CONTENTS[3])
    store.damage(damaged[1:], 4321)
    flipped = bytearray(CONTENTS[3])
    flipped[4321] ^= 0xFF
    result = store.run("verify", "-q")
    assert result.status == 1 and sound not in result.out
    assert result.lines == [f"damaged      {damaged}  recorded CRC32C {crc32c_of(CONTENTS[3])}, "
                            f"read {crc32c_of(bytes(flipped))}", summary(ok=1, damaged=1)]


def test_verify_records_missing_checksums(store: Store) -> None:
    """An attachment stored before checksums were (as a plain client stores
    it) has none, but on GCS, which computes one for every object."""
    handle = f"/2024/05/06/{uuid.uuid4()}/before.txt"
    store.put(handle[1:], b"stored before checksums")
    has_one = store.backend == "gcs"
    plain = store.run("verify", "-q")
    assert plain.status == 0
    assert plain.lines == ([summary(ok=1)] if has_one else
                           [f"no checksum  {handle}", summary(unchecked=1)])
    recording = store.run("verify", "--record", "-q")
    assert recording.status == 0
    assert recording.lines == ([summary(ok=1, recorded=0)] if has_one else [
        f"recorded     {handle}  CRC32C {crc32c_of(b'stored before checksums')}",
        summary(recorded=1)])
    assert store.run("verify", "-q").lines == [summary(ok=1)]
