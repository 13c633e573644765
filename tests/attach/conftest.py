"""Fixtures of the contract suite: one application, storage and `rex serve`
per backend, for the whole session."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
import yaml

sys.path.insert(0, os.path.dirname(__file__))

from backend_gcs import start_gcs  # noqa: E402
from backend_s3 import start_s3  # noqa: E402
from backends import MAX_SIZE, Backend, start_local  # noqa: E402

from rex.attach import Storage, get_storage  # noqa: E402
from rex.core import Rex  # noqa: E402

STARTERS = {"gcs": start_gcs, "local": start_local, "s3": start_s3}
MARKS = {"gcs": pytest.mark.gcs, "s3": pytest.mark.s3}  # so that -m "not s3" skips its server


@pytest.fixture(scope="session",
                params=[pytest.param(name, marks=MARKS.get(name, ())) for name in sorted(STARTERS)])
def backend(request, tmp_path_factory) -> Iterator[Backend]:
    backend = STARTERS[request.param](tmp_path_factory.mktemp(request.param))
    saved = {name: os.environ.get(name) for name in backend.env}
    os.environ.update(backend.env)
    try:
        yield backend
    finally:
        backend.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def settings(backend: Backend, tmp_path_factory) -> dict:
    db = tmp_path_factory.mktemp("db") / "demo.sqlite"
    return {**backend.settings, "db": f"sqlite:///{db}", "attach_max_size": MAX_SIZE,
            "access": {"rex.attach": "authenticated"}}


@pytest.fixture(scope="session")
def app(settings: dict) -> Rex:
    return Rex("rex.attach_demo", **settings)


@pytest.fixture
def storage(app: Rex) -> Iterator[Storage]:
    with app:
        yield get_storage()


@pytest.fixture(scope="session")
def base_url(settings: dict, tmp_path_factory) -> Iterator[str]:
    """A real `rex serve` of the same application."""
    from helpers import serve

    tmp = tmp_path_factory.mktemp("serve")
    (tmp / "settings.yaml").write_text(yaml.safe_dump(settings))
    with serve(tmp, "--settings", str(tmp / "settings.yaml")) as url:
        yield url
