"""Building the demo from any working directory, on its default database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests
import yaml
from attach_demo.test_commands import post
from attach_demo.test_serve import TIMEOUT, rows, upload
from helpers import serve
from webob import Request

from rex.core import Rex
from rex.db import get_db


def test_default_database_from_an_empty_directory(tmp_path: Path, attach_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The default ``{cwd}/sandbox/db.sqlite`` works where ./sandbox is missing."""
    cwd = tmp_path / "empty"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    app = Rex("rex.attach_demo", attach_dir=str(attach_dir))
    assert post(app, code="V1", title="t", attachment=("a.txt", b"a")).status_int == 303
    assert Request.blank("/download?code=V1").get_response(app).body == b"a"
    assert (cwd / "sandbox" / "db.sqlite").is_file()
    assert os.stat(cwd / "sandbox").st_mode & 0o077 == 0  # the owner's only
    with app:
        get_db().dispose()


def test_rex_serve_on_the_default_database(tmp_path: Path, attach_dir: Path) -> None:
    # A settings file with no `db`, so that serve() adds none either.
    settings = tmp_path / "settings.yaml"
    settings.write_text(yaml.safe_dump({"attach_dir": str(attach_dir)}))
    assert not (tmp_path / "sandbox").exists()
    with serve(tmp_path, "--settings", str(settings)) as url:  # cwd: tmp_path
        assert upload(url, "V1", "First", "a.txt", b"first").status_code == 303
        assert [row["code"] for row in rows(url)] == ["V1"]
        assert requests.get(f"{url}/download?code=V1", timeout=TIMEOUT).content == b"first"
    assert (tmp_path / "sandbox" / "db.sqlite").is_file()
