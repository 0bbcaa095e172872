"""Exception types with messages that name the culprit (file, key, row)."""


class FairgenError(Exception):
    """Base class: the CLI prints these as one clear line and exits non-zero."""


class ConfigError(FairgenError):
    """Invalid configuration (unknown key, wrong type, impossible value)."""


class DataError(FairgenError):
    """Bad input data. Build the message with :func:`where` so it names file and row."""


class FormatVersionError(FairgenError):
    """A file written by an unknown (newer/older) format version."""


def where(path, line=None) -> str:
    """``'path'`` or ``'path, line N'`` for error messages."""
    return f"{path}" if line is None else f"{path}, line {line}"
