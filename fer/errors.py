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


def printable(text: str) -> str:
    """``text`` safe to print as one line on any terminal: a newline, a control character or
    an undecodable byte of a file name (a lone surrogate) is shown escaped, so that a crafted
    name can neither forge a line of output nor crash a strict UTF-8 stream."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF
                   else ascii(ch)[1:-1] for ch in text)
