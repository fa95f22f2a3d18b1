"""Safe, verifiable backups of strategy results, and of the data files a program rewrites.

Every function runs resbak's Rust library in this process (the GIL is released while it
works) and returns plain Python objects in the shapes ``resbak --json`` prints. Failures raise
a subclass of :class:`resbak.Error` named after the JSON error kind. Messages go to the
``logging`` logger ``"resbak"``.

Example::

    import logging, resbak

    logging.basicConfig(level=logging.INFO)
    report = resbak.write_with_backup("data/experiences.json", '{"experiences": [1, 2]}')
    # INFO:resbak:Backup created: data/backups/experiences.json.20261130_150102.backup
    resbak.restore_file("data/experiences.json")  # the newest copy that parses
"""

from __future__ import annotations

import builtins
import json
import logging
import os
from typing import Any, Iterable, Optional, Sequence, Union

from . import _errors, _resbak
from ._errors import *  # noqa: F401,F403  (the Error classes)
from ._errors import Error, error_for

__all__ = [
    "Error",
    "write_with_backup",
    "backup_file",
    "list_file_backups",
    "verify_file_backups",
    "restore_file",
    "backup",
    "list",
    "verify",
    "restore",
    "DEFAULT_KEEP",
] + _errors.__all__

__version__: str = _resbak.__version__

#: Versions of a file kept unless told otherwise.
DEFAULT_KEEP = 10

PathLike = Union[str, "os.PathLike[str]"]

log = logging.getLogger("resbak")


def _path(path: Any) -> str:
    """A path as text; bytes and other types are refused rather than misread."""
    if isinstance(path, (str, os.PathLike)):
        text = os.fspath(path)
        if isinstance(text, str) and text:
            return text
    raise TypeError(f"path must be a non-empty str or os.PathLike of str, not {path!r}")


def _keep(keep: Any) -> int:
    """A count of versions: an int of at least 1 (not a bool, float or str)."""
    if isinstance(keep, bool) or not isinstance(keep, int):
        raise TypeError(f"keep must be an int, not {type(keep).__name__}")
    if keep < 1:
        raise _errors.InvalidKeepError(f"keep must be at least 1, not {keep}", 2)
    return keep


def _call(args: Sequence[Any]) -> Any:
    """Runs one resbak command line with ``--json``; returns its report or raises."""
    argv = [os.fspath(a) if isinstance(a, os.PathLike) else str(a) for a in args]
    code, report, error = _resbak.call(argv)
    if error is not None:
        kind, message = error
        raise error_for(kind, message, code)
    return json.loads(report) if report.strip() else None


def _folders(results_dir: Optional[PathLike], backup_dir: Optional[PathLike],
             config: Optional[PathLike]) -> builtins.list:
    args: builtins.list = []
    for flag, value in (("--results-dir", results_dir), ("--backup-dir", backup_dir),
                        ("--config", config)):
        if value is not None:
            args += [flag, value]
    return args


def _log_copy(report: dict, what: str) -> None:
    if report.get("unchanged"):
        log.info("%s unchanged since %s; no new copy", what, report["backup"])
    elif report.get("backup"):
        log.info("Backup created: %s", report["backup"])
    for removed in report.get("removed", []):
        log.info("Removed old backup: %s", removed)
    for warning in report.get("warnings", []):
        log.warning("%s", warning)


def write_with_backup(path: PathLike, data: Union[bytes, bytearray, memoryview, str],
                      keep: int = DEFAULT_KEEP, *, strict: bool = False) -> dict:
    """Keeps a copy of ``path`` as it is, then replaces it with ``data`` atomically.

    ``data`` is bytes, or a str written as UTF-8. The copy goes to ``backups/`` beside the
    file (none when the file is identical to its newest copy, or does not exist yet), older
    copies beyond ``keep`` distinct versions are removed, then the file is replaced (temp
    file, fsync, rename; through a symbolic link to its target). A failed copy is a warning
    and the write goes ahead, unless ``strict``.

    Returns ``{backup, unchanged, json_valid, json_error, items, array_counts,
    written_through, removed, warnings}``.

    >>> resbak.write_with_backup("data/experiences.json", json.dumps(store))  # doctest: +SKIP
    """
    if isinstance(data, str):
        payload = data.encode("utf-8")
    elif isinstance(data, (bytes, bytearray, memoryview)):
        payload = bytes(data)
    else:
        raise TypeError(f"data must be bytes or str, not {type(data).__name__}")
    report, error = _resbak.write_with_backup(_path(path), payload, _keep(keep), bool(strict))
    if error is not None:
        raise error_for(error[0], error[1], 2)
    result = json.loads(report)
    _log_copy(result, os.fspath(path))
    return result


def backup_file(path: PathLike, keep: int = DEFAULT_KEEP) -> Optional[dict]:
    """Copies ``path`` into ``backups/`` beside it, as ``resbak file backup`` does.

    Returns ``{backup, checksum: {sha256, len}, unchanged, json_valid, json_error, items,
    array_counts, removed, warnings}``, or None when the file does not exist.

    >>> resbak.backup_file("data/experiences.json", keep=20)["backup"]  # doctest: +SKIP
    'data/backups/experiences.json.20261130_150102.backup'
    """
    report = _call(["file", "backup", _path(path), "--keep", _keep(keep)])
    if report is not None:
        _log_copy(report, os.fspath(path))
    return report


def list_file_backups(path: PathLike) -> builtins.list:
    """The copies of ``path``, newest first, as ``resbak file list --json`` gives them.

    Each is ``{path, created, size, sha256, recorded_sha256, status: "ok"|"damaged"|
    "unrecorded", json_valid, json_error, items, array_counts}``.

    >>> [c["items"] for c in resbak.list_file_backups("data/experiences.json")]  # doctest: +SKIP
    [1534, 1520]
    """
    return _call(["file", "list", path])


def verify_file_backups(path: PathLike) -> dict:
    """Checks every copy of ``path`` against its folder's SHA256SUMS.

    Returns ``{checked, ok, problems, unrecorded, results: [{path, status, sha256,
    recorded_sha256, problem}]}``; a damaged copy is a result, not an exception.
    """
    report = _call(["file", "verify", path])
    for result in report["results"]:
        if result["status"] in ("damaged", "missing"):
            log.warning("%s: %s", result["path"], result["problem"])
    return report


def restore_file(path: PathLike, which: str = "latest", keep: int = DEFAULT_KEEP) -> dict:
    """Brings back a copy of ``path``, after keeping the current file as a copy.

    ``which`` is ``"latest"`` (the newest intact copy that parses, for JSON files),
    ``"exact"`` (the newest copy whatever it holds) or a copy's name or path. A damaged copy
    raises :class:`DamagedCopyError`.

    Returns ``{restored, checksum, recorded, json_valid, json_error, items, array_counts,
    passed_over: [{path, reason}], saved, saved_unchanged, written_through, removed,
    warnings}``.

    >>> resbak.restore_file("data/experiences.json")["items"]  # doctest: +SKIP
    1520
    """
    choice = {"latest": ["--latest"], "exact": ["--exact"]}.get(which, [which])
    report = _call(["file", "restore", _path(path), *choice, "--keep", _keep(keep)])
    for passed in report["passed_over"]:
        log.warning("Passed over %s: %s", passed["path"], passed["reason"])
    log.info("Restored %s -> %s", report["restored"], os.fspath(path))
    for removed in report["removed"]:
        log.info("Removed old backup: %s", removed)
    for warning in report["warnings"]:
        log.warning("%s", warning)
    return report


def backup(strategy: Union[str, Iterable[str], None] = None, *, all: bool = False,
           exclude: Iterable[str] = (), dry_run: bool = False, always: bool = False,
           threads: Optional[int] = None, level: Optional[int] = None,
           keep: Optional[int] = None, keep_safety: Optional[int] = None,
           results_dir: Optional[PathLike] = None, backup_dir: Optional[PathLike] = None,
           config: Optional[PathLike] = None) -> builtins.list:
    """Archives strategy folders, as ``resbak backup`` does; returns its JSON report.

    One ``{strategy, status: "backed_up"|"unchanged"|"dry_run"|"failed", archive, size,
    entries, ..., removed, error}`` per strategy.

    >>> resbak.backup("btc_sma_cross", keep=10)[0]["archive"]  # doctest: +SKIP
    'btc_sma_cross_20261130_150102.tar.gz'
    """
    names = [strategy] if isinstance(strategy, str) else builtins.list(strategy or ())
    args: builtins.list = ["backup", *names] + _folders(results_dir, backup_dir, config)
    args += ["--all"] if all else []
    # A single pattern given as a string is one pattern, not one per character.
    for pattern in [exclude] if isinstance(exclude, str) else exclude:
        args += ["--exclude", pattern]
    args += ["--dry-run"] if dry_run else []
    args += ["--always"] if always else []
    for flag, value in (("--threads", threads), ("--level", level), ("--keep", keep),
                        ("--keep-safety", keep_safety)):
        if value is not None:
            args += [flag, value]
    results = _call(args)
    for r in results:
        if r["status"] == "backed_up":
            log.info("Backup created: %s", r["archive"])
        elif r["status"] == "unchanged":
            log.info("No changes in %s since %s; skipped", r["strategy"], r["archive"])
        elif r["status"] == "failed":
            log.error("Backup of %s failed: %s", r["strategy"], r["error"])
        for removed in r.get("removed") or []:
            log.info("Removed old backup: %s", removed)
    return results


def list(strategy: Optional[str] = None, *, check: bool = False, remote: Optional[str] = None,
         results_dir: Optional[PathLike] = None, backup_dir: Optional[PathLike] = None,
         config: Optional[PathLike] = None) -> builtins.list:
    """The catalogue, as ``resbak list --json`` gives it: one dict per backup.

    >>> [b["archive"] for b in resbak.list("btc_sma_cross")]  # doctest: +SKIP
    ['btc_sma_cross_20261130_150102.tar.gz']
    """
    args: builtins.list = ["list"] + ([strategy] if strategy else [])
    args += _folders(results_dir, backup_dir, config)
    args += ["--check"] if check else []
    args += ["--remote", remote] if remote else []
    return _call(args)


def verify(*targets: str, deep: bool = False, remote: Optional[str] = None,
           results_dir: Optional[PathLike] = None, backup_dir: Optional[PathLike] = None,
           config: Optional[PathLike] = None) -> dict:
    """Checks archives against the manifest, as ``resbak verify --json`` does.

    Returns ``{deep, checked, intact, problems, results: [...]}``; problems are results, not
    exceptions.

    >>> resbak.verify(deep=True)["problems"]  # doctest: +SKIP
    0
    """
    args: builtins.list = ["verify", *targets] + _folders(results_dir, backup_dir, config)
    args += ["--deep"] if deep else []
    args += ["--remote", remote] if remote else []
    report = _call(args)
    for r in report["results"]:
        if r["status"] != "ok":
            log.warning("%s: %s", r["archive"], r["problem"])
    return report


def restore(archive: str, *, to: Optional[PathLike] = None, force: bool = False,
            include: Iterable[str] = (), dry_run: bool = False, remote: Optional[str] = None,
            results_dir: Optional[PathLike] = None, backup_dir: Optional[PathLike] = None,
            config: Optional[PathLike] = None) -> Any:
    """Restores an archive (name, STRATEGY or STRATEGY~N), as ``resbak restore`` does.

    >>> resbak.restore("btc_sma_cross~1", to="review")["entries"]  # doctest: +SKIP
    13
    """
    args: builtins.list = ["restore", archive] + _folders(results_dir, backup_dir, config)
    args += ["--to", to] if to is not None else []
    args += ["--force"] if force else []
    for pattern in include:
        args += ["--include", pattern]
    args += ["--dry-run"] if dry_run else []
    args += ["--remote", remote] if remote else []
    report = _call(args)
    if isinstance(report, dict) and "destination" in report:
        log.info("Restored %s -> %s", report.get("archive"), report["destination"])
    return report
