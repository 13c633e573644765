"""Where an application keeps handles (`AttachmentReferences`), and the
orphans found by matching them with the storage in one sorted pass."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from rex.attach import AttachmentReferences, get_storage
from rex.attach.references import MISSING, UNREFERENCED, checked_order, orphans, referenced
from rex.attach_demo import file_table
from rex.core import Error, Rex
from rex.db import get_db

GONE = "/2024/01/01/6f1c6ed5-3b5e-4b8e-9a53-2b2d2b6d1a2e/gone.txt"


def test_the_demo_declares_its_column(demo: Rex) -> None:
    declared = AttachmentReferences.all()
    assert [str(references()) for references in declared] == ["file.handle"]


def test_handles_come_sorted_once_each(demo: Rex) -> None:
    storage = get_storage()
    handles = [storage.add(f"{i}.txt", "x") for i in range(5)]
    with get_db().begin() as connection:
        for i, handle in enumerate([*handles, GONE]):
            connection.execute(insert(file_table).values(code=f"c{i}", title="t", handle=handle,
                                                         size=1))
    assert list(referenced()) == sorted([*handles, GONE])


def test_orphans_match_the_two_sorted_streams(demo: Rex) -> None:
    storage = get_storage()
    kept, lost = storage.add("kept.txt", "k"), storage.add("lost.txt", "l")
    with get_db().begin() as connection:
        for code, handle in {"a": kept, "b": GONE}.items():
            connection.execute(insert(file_table).values(code=code, title="t", handle=handle,
                                                         size=1))
    assert list(orphans(storage)) == sorted([(UNREFERENCED, lost), (MISSING, GONE)],
                                            key=lambda found: found[1])


def test_a_stream_out_of_order_is_refused() -> None:
    with pytest.raises(Error) as refused:
        list(checked_order(["/b", "/c", "/a"], "the storage"))
    assert str(refused.value) == ("Expected the handles of the storage in sorted order, got:\n"
                                  "    /a after /c")


def test_an_application_that_declares_nothing_has_no_orphans_to_tell(attach_dir) -> None:
    with Rex("rex.attach", attach_dir=str(attach_dir)):
        with pytest.raises(Error, match="declares no AttachmentReferences"):
            list(referenced())
