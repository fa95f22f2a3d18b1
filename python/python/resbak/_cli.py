"""The ``resbak`` console script: the same command line as the Rust binary, run by the library."""

import sys

from . import _resbak


def main() -> None:
    """Runs ``resbak`` with this process's arguments and exits with its exit code."""
    sys.stdout.flush()
    sys.exit(_resbak.main(["resbak", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
