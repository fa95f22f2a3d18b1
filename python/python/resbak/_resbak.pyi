"""The extension module: resbak's library entry points (see the package for the API)."""

from typing import List, Optional, Tuple

__version__: str

def call(args: List[str]) -> Tuple[int, str, Optional[Tuple[str, str]]]:
    """Runs one resbak command line with --json: (exit code, JSON report, (kind, message))."""

def write_with_backup(
    path: str, data: bytes, keep: int, strict: bool
) -> Tuple[Optional[str], Optional[Tuple[str, str]]]:
    """The library's write_with_backup: (JSON report, (kind, message))."""

def main(argv: List[str]) -> int:
    """Runs the resbak command line (program name first); returns the exit code."""
