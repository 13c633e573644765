"""The RexDB application kernel: packages, settings, validators, errors."""

from .application import (MANDATORY, Initialize, Package, PackageCollection, Rex,
                          Setting, WSGIHandler, cached, get_rex, get_settings)
from .error import (Error, ExistsError, InsufficientStorageError, NotFoundError,
                    TooLargeError, UnavailableError)
from .extension import Extension
from .validate import (AnyVal, BoolVal, ChoiceVal, IntVal, MapVal, MaybeVal, PathVal,
                       SeqVal, StrVal, Validate)

__all__ = [
    "MANDATORY", "AnyVal", "BoolVal", "ChoiceVal", "Error", "ExistsError", "Extension",
    "Initialize", "InsufficientStorageError", "IntVal", "MapVal", "MaybeVal", "NotFoundError",
    "Package", "PackageCollection", "PathVal", "Rex", "SeqVal", "Setting", "StrVal",
    "TooLargeError", "UnavailableError", "Validate", "WSGIHandler", "cached", "get_rex",
    "get_settings",
]
