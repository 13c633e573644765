"""A demo web application: upload files with a code and a title, list them,
download them, delete them."""

REQUIRES = ("rex.attach", "rex.db")

from .commands import DeleteCmd, DownloadCmd, IndexCmd, UploadCmd  # noqa: E402
from .database import CreateFileTable, file_table  # noqa: E402
from .references import FileHandles  # noqa: E402,F401
from .static import StaticLocation  # noqa: E402

__all__ = ["CreateFileTable", "DeleteCmd", "DownloadCmd", "IndexCmd", "StaticLocation",
           "UploadCmd", "file_table"]
