"""HTTP for RexDB packages: commands, locations, access control, templates."""

REQUIRES = ()

from .access import AccessSetting, Permission, has_permission, package_permission
from .command import Command, Location, Parameter
from .form import Spool, Upload, parse_form
from .handler import WebHandler
from .redirect import redirect
from .template import render_template

__all__ = [
    "AccessSetting", "Command", "Location", "Parameter", "Permission", "Spool", "Upload",
    "WebHandler", "has_permission", "package_permission", "parse_form", "redirect",
    "render_template",
]
