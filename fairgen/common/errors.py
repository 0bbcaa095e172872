"""Exception types with messages that name the culprit (file, key, row)."""


class FairgenError(Exception):
    """Base class: the CLI prints these as one clear line and exits non-zero."""


class ConfigError(FairgenError):
    """Invalid configuration (unknown key, wrong type, impossible value)."""


class DataError(FairgenError):
    """Bad input data. Build the message with :func:`where` so it names file and row."""


class FormatVersionError(FairgenError):
    """A file written by an unknown (newer/older) format version."""


class CheckpointError(FairgenError):
    """A training checkpoint that cannot be used: unreadable/corrupted, or for another model/config."""


class TrainingDivergedError(FairgenError):
    """Training produced a non-finite (NaN/Inf) loss; the message names the step range."""


def where(path, line=None) -> str:
    """``'path'`` or ``'path, line N'`` for error messages."""
    return f"{path}" if line is None else f"{path}, line {line}"
