"""Files that hold secrets (the SQLite database, key files, files with credentials a command writes): created
readable by their owner alone, whatever the umask.

``os.open``'s mode is cut by the umask, never widened, and ``fchmod`` sets it exactly; the file is created with
``O_EXCL``, so an existing file (or a link an attacker placed) is never written through.
"""

from __future__ import annotations

import os

PRIVATE = 0o600


def create_private(path: str | os.PathLike[str], data: bytes = b"", mode: int = PRIVATE) -> None:
    """Create ``path`` with ``mode`` and write ``data``; FileExistsError if it exists."""
    fd = os.open(os.fspath(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def create_private_if_missing(path: str | os.PathLike[str], mode: int = PRIVATE) -> bool:
    """Create ``path`` empty with ``mode`` unless it exists (True if it was created here). A missing or
    unwritable directory is left for the caller's own open to report."""
    try:
        create_private(path, b"", mode)
    except (FileExistsError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError):
        return False
    return True


def replace_private(path: str | os.PathLike[str], data: bytes, mode: int = PRIVATE) -> None:
    """Write ``data`` to ``path`` through a new private file renamed over it (atomic; an existing file's
    mode does not carry over)."""
    name = os.fspath(path)
    temporary = f"{name}.{os.getpid()}.tmp"
    create_private(temporary, data, mode)
    try:
        os.replace(temporary, name)
    except BaseException:
        os.unlink(temporary)
        raise
