"""A demo web application: upload files with a code and a title, list them,
download them."""

REQUIRES = ("rex.attach", "rex.db")

from .commands import DownloadCmd, IndexCmd, UploadCmd  # noqa: E402
from .database import CreateFileTable, file_table  # noqa: E402
from .references import FileHandles  # noqa: E402,F401

__all__ = ["CreateFileTable", "DownloadCmd", "IndexCmd", "UploadCmd", "file_table"]
