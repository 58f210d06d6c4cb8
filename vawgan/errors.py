"""Exceptions whose message is one line meant for a user."""

from __future__ import annotations

import os


class VawganError(Exception):
    """Base class: the message is a single line shown to the user as is."""


class ConfigError(VawganError, ValueError):
    """A configuration file or value is invalid."""


class AudioError(VawganError, ValueError):
    """An input audio file is unusable. Message format: ``<path>: <problem>``."""

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(problem if path is None else f"{path}: {problem}")


class FeatureError(VawganError, ValueError):
    """A feature file is missing, corrupt or inconsistent with the configuration."""


class BundleError(VawganError, ValueError):
    """A model bundle is missing, corrupt or incompatible."""


class CorpusError(VawganError, ValueError):
    """A corpus or dump directory, or an utterance list, is unusable."""


class StatsError(VawganError, ValueError):
    """A statistics file is missing, corrupt or of the wrong format."""


class CheckpointError(VawganError, ValueError):
    """A checkpoint is missing, corrupt or belongs to another configuration/data set."""


class InputsError(VawganError, ValueError):
    """Too little usable input in a set of files (e.g. seconds of speech to enroll a
    speaker). ``left_out`` holds the one-line errors of the files that were left out
    (unreadable, silent), for the command to list above its one-line message."""

    def __init__(self, message: str, left_out=()):
        self.left_out = list(left_out)
        super().__init__(message)


class TrainingError(VawganError, RuntimeError):
    """Training cannot go on (e.g. a loss became NaN or infinite)."""


class OutputError(VawganError, OSError):
    """An output cannot be written. Message format: ``<path>: <cause>``."""

    def __init__(self, path: str | os.PathLike, cause: str):
        self.path = str(path)
        self.cause = cause
        super().__init__(f"{path}: cannot write ({cause})")

    def __str__(self) -> str:  # OSError would format (errno, strerror) otherwise
        return f"{self.path}: cannot write ({self.cause})"


def file_error(path, e: BaseException) -> VawganError:
    """``e`` as the one-line error of a batch's file ``path``: a VawganError as it is,
    anything else as ``"<path>: internal error <Type>: <message>"`` (a batch goes on
    past it and lists it)."""
    if isinstance(e, VawganError):
        return e
    return VawganError(f"{path}: internal error {type(e).__name__}: {e}")
