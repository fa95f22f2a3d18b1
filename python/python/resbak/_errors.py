"""resbak.Error and one subclass per error kind, as ``kind`` in resbak's JSON error objects."""

from __future__ import annotations

from typing import Dict, Type


class Error(Exception):
    """A resbak failure. ``kind`` is the JSON error kind, ``exit_code`` the command line's
    (1: stored data is damaged or missing; 2: usage or operational error)."""

    kind = "error"

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class IoError(Error):
    """resbak error kind ``io``."""

    kind = "io"


class InvalidStrategyError(Error):
    """resbak error kind ``invalid_strategy``."""

    kind = "invalid_strategy"


class UnknownStrategyError(Error):
    """resbak error kind ``unknown_strategy``."""

    kind = "unknown_strategy"


class EmptyResultsError(Error):
    """resbak error kind ``empty_results``."""

    kind = "empty_results"


class DamagedManifestError(Error):
    """resbak error kind ``damaged_manifest``."""

    kind = "damaged_manifest"


class UnknownBackupError(Error):
    """resbak error kind ``unknown_backup``."""

    kind = "unknown_backup"


class CorruptError(Error):
    """resbak error kind ``corrupt``."""

    kind = "corrupt"


class MissingError(Error):
    """resbak error kind ``missing``."""

    kind = "missing"


class UnsafeEntryError(Error):
    """resbak error kind ``unsafe_entry``."""

    kind = "unsafe_entry"


class InvalidGlobError(Error):
    """resbak error kind ``invalid_glob``."""

    kind = "invalid_glob"


class InvalidKeepError(Error):
    """resbak error kind ``invalid_keep``."""

    kind = "invalid_keep"


class ConfigError(Error):
    """resbak error kind ``config``."""

    kind = "config"


class UnrestorableError(Error):
    """resbak error kind ``unrestorable``."""

    kind = "unrestorable"


class SourceHoldsBackupsError(Error):
    """resbak error kind ``source_holds_backups``."""

    kind = "source_holds_backups"


class DestinationExistsError(Error):
    """resbak error kind ``destination_exists``."""

    kind = "destination_exists"


class RemoteError(Error):
    """resbak error kind ``remote``."""

    kind = "remote"


class NoFileBackupsError(Error):
    """resbak error kind ``no_file_backups``."""

    kind = "no_file_backups"


class UnsafeDestinationError(Error):
    """resbak error kind ``unsafe_destination``."""

    kind = "unsafe_destination"


class NotInArchiveError(Error):
    """resbak error kind ``not_in_archive``."""

    kind = "not_in_archive"


class MissingFolderError(Error):
    """resbak error kind ``missing_folder``."""

    kind = "missing_folder"


class UnknownNameError(Error):
    """resbak error kind ``unknown_name``."""

    kind = "unknown_name"


class NoRegularBackupError(Error):
    """resbak error kind ``no_regular_backup``."""

    kind = "no_regular_backup"


class BackupOutOfRangeError(Error):
    """resbak error kind ``backup_out_of_range``."""

    kind = "backup_out_of_range"


class DamagedCopyError(Error):
    """resbak error kind ``damaged_copy``."""

    kind = "damaged_copy"


class NoGoodCopyError(Error):
    """resbak error kind ``no_good_copy``."""

    kind = "no_good_copy"


class LinkedStrategyError(Error):
    """resbak error kind ``linked_strategy``: a strategy folder that is a symbolic link."""

    kind = "linked_strategy"


class ChangedWhileCopiedError(Error):
    """resbak error kind ``changed_while_copied``: a file kept changing while it was copied."""

    kind = "changed_while_copied"


class InvalidArgumentError(Error):
    """resbak error kind ``invalid_argument``."""

    kind = "invalid_argument"


class KeyProblemError(Error):
    """resbak error kind ``key``: an age identity is missing, wrong or unreadable."""

    kind = "key"


class TakenError(Error):
    """resbak error kind ``taken``: another machine pushed a backup of the same name."""

    kind = "taken"


class NotAFileError(Error):
    """resbak error kind ``not_a_file``: ``cat`` of a path that is no file in the archive."""

    kind = "not_a_file"


class UsageError(Error):
    """resbak error kind ``usage``."""

    kind = "usage"


class InterruptedError(Error):
    """resbak error kind ``interrupted``."""

    kind = "interrupted"


#: The class for each kind.
KINDS: Dict[str, Type[Error]] = {c.kind: c for c in Error.__subclasses__()}


def error_for(kind: str, message: str, exit_code: int) -> Error:
    """The exception for an error of ``kind`` (plain :class:`Error` for a kind this version
    does not know)."""
    error = KINDS.get(kind, Error)(message, exit_code)
    if type(error) is Error:
        error.kind = kind
    return error


__all__ = ["Error", "KINDS"] + [c.__name__ for c in KINDS.values()]
