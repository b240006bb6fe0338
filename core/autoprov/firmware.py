"""Serving files from a model's firmware directory: streamed, with conditional GET and Range, never escaping it."""

from __future__ import annotations

import os
from pathlib import Path

from werkzeug.http import parse_range_header
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
    environ = request.environ
    if "HTTP_RANGE" in environ:
        ranges = parse_range_header(environ["HTTP_RANGE"])
        if ranges is None or ranges.units != "bytes" or len(ranges.ranges) != 1:
            # Malformed, not bytes, or several ranges (which need multipart/byteranges): RFC 9110 lets a server
            # ignore Range, and the whole file serves the client better than Werkzeug's 416.
            environ = {k: v for k, v in environ.items() if k != "HTTP_RANGE"}
    response = send_file(
        path,
        environ,
        mimetype="application/octet-stream",
        conditional=True,
        etag=True,
        max_age=None,
    )
    if response.status_code == 412:  # If-Match failed: say so without the file
        response.close()
        response.set_data(b"")
    return response
