"""Typed errors for mistakes a user can make.

Every message names the file, line, field or flag at fault and says how to fix
it. The CLI prints ``str(error)`` as one line on stderr and exits with code 2.
"""


class FERError(Exception):
    """Base class of every error a user can cause."""


class FERDataError(FERError, ValueError):
    """A data file or folder is missing, malformed or inconsistent."""


class ConfigError(FERError, ValueError):
    """A configuration field or command-line flag has a value that cannot work."""
