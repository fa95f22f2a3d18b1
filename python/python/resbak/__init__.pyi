"""Type hints of the resbak package (see its docstrings for the shapes of the results)."""

import os
from typing import Any, Dict, Iterable, List, Optional, Union

from ._errors import *  # noqa: F401,F403
from ._errors import Error as Error

PathLike = Union[str, os.PathLike[str]]

__version__: str
DEFAULT_KEEP: int

def write_with_backup(
    path: PathLike,
    data: Union[bytes, bytearray, memoryview, str],
    keep: int = ...,
    *,
    strict: bool = ...,
) -> Dict[str, Any]: ...
def backup_file(path: PathLike, keep: int = ...) -> Optional[Dict[str, Any]]: ...
def list_file_backups(path: PathLike) -> List[Dict[str, Any]]: ...
def verify_file_backups(path: PathLike) -> Dict[str, Any]: ...
def restore_file(path: PathLike, which: str = ..., keep: int = ...) -> Dict[str, Any]: ...
def backup(
    strategy: Union[str, Iterable[str], None] = ...,
    *,
    all: bool = ...,
    exclude: Iterable[str] = ...,
    dry_run: bool = ...,
    always: bool = ...,
    threads: Optional[int] = ...,
    level: Optional[int] = ...,
    keep: Optional[int] = ...,
    keep_safety: Optional[int] = ...,
    results_dir: Optional[PathLike] = ...,
    backup_dir: Optional[PathLike] = ...,
    config: Optional[PathLike] = ...,
) -> List[Dict[str, Any]]: ...
def list(
    strategy: Optional[str] = ...,
    *,
    check: bool = ...,
    remote: Optional[str] = ...,
    results_dir: Optional[PathLike] = ...,
    backup_dir: Optional[PathLike] = ...,
    config: Optional[PathLike] = ...,
) -> List[Dict[str, Any]]: ...
def verify(
    *targets: str,
    deep: bool = ...,
    remote: Optional[str] = ...,
    results_dir: Optional[PathLike] = ...,
    backup_dir: Optional[PathLike] = ...,
    config: Optional[PathLike] = ...,
) -> Dict[str, Any]: ...
def restore(
    archive: str,
    *,
    to: Optional[PathLike] = ...,
    force: bool = ...,
    include: Iterable[str] = ...,
    dry_run: bool = ...,
    remote: Optional[str] = ...,
    results_dir: Optional[PathLike] = ...,
    backup_dir: Optional[PathLike] = ...,
    config: Optional[PathLike] = ...,
) -> Any: ...
