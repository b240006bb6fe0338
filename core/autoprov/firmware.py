"""Serving files from a model's firmware directory: streamed, with conditional GET and Range, never escaping it."""

from __future__ import annotations

import os
from pathlib import Path

from werkzeug.security import safe_join
from werkzeug.utils import send_file
from werkzeug.wrappers import Request, Response


def resolve(directory: Path, filename: str) -> Path | None:
    """The file ``filename`` names inside ``directory``, or None if it is missing or lies outside it.

    Refuses ``..``, absolute paths, backslashes, NUL, dot-files and symlinks that lead out of the directory.
    """
    if "\x00" in filename or "\\" in filename:
        return None
    if any(part.startswith(".") for part in filename.split("/")):
        return None
    joined = safe_join(str(directory), filename)
    if joined is None:
        return None
    root = os.path.realpath(directory)
    real = os.path.realpath(joined)
    if os.path.commonpath([root, real]) != root or not os.path.isfile(real):
        return None
    return Path(real)


def serve(request: Request, path: Path) -> Response:
    """Stream one file (sendfile under mod_wsgi), answering If-None-Match/If-Modified-Since and Range."""
    return send_file(
        path,
        request.environ,
        mimetype="application/octet-stream",
        conditional=True,
        etag=True,
        max_age=None,
    )
