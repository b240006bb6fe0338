"""Serving files from a model's firmware directory: streamed, with conditional GET and Range, never escaping it.

Behind Apache the bytes need not pass through Python at all: ``[firmware] send_with`` hands the chosen file to
Apache (see README, "Production: Apache with mod_wsgi"), which then answers Range and conditional GET itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from werkzeug.http import parse_range_header
from werkzeug.security import safe_join
from werkzeug.utils import send_file
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import FileWrapper

from autoprov.config import FirmwareSettings

# Bytes per block where the server has no sendfile of its own (Granian): each block is a trip from Python into
# the server, and Werkzeug's 8 KiB makes 2,560 of them for a 20 MiB image (up to 1.4x slower, measured).
FILE_BLOCK = 256 * 1024


def resolve(directory: Path, filename: str) -> Path | None:
    """The file ``filename`` names inside ``directory``, or None if it is missing or lies outside it.

    Refuses ``..``, absolute paths, backslashes, NUL, dot-files, empty segments (``a//b``, a trailing ``/``,
    which names a directory even where the file exists) and symlinks that lead out of the directory.
    """
    if "\x00" in filename or "\\" in filename:
        return None
    if any(not part or part.startswith(".") for part in filename.split("/")):
        return None
    joined = safe_join(str(directory), filename)
    if joined is None:
        return None
    root = os.path.realpath(directory)
    real = os.path.realpath(joined)
    if os.path.commonpath([root, real]) != root or not os.path.isfile(real):
        return None
    return Path(real)


def serve(request: Request, path: Path, firmware: FirmwareSettings | None = None) -> Response:
    """Send one file ``resolve`` found: handed to Apache if ``firmware.send_with`` says so, else streamed."""
    handed = handoff(request, path, firmware) if firmware is not None else None
    return handed if handed is not None else stream(request, path)


def handoff(request: Request, path: Path, firmware: FirmwareSettings) -> Response | None:
    """An empty 200 whose ``Location`` names the file under ``apache_alias``; None to stream it from here.

    mod_wsgi in daemon mode turns such an answer into an Apache internal redirect: Apache then serves the
    file itself (sendfile, Range, If-None-Match, If-Range, with validators from the file) and the daemon never
    copies a byte. Anywhere else (``autoprov serve``, embedded mode) the client would get that empty answer,
    so the file is streamed instead. mod_xsendfile was measured and not chosen: Debian's 0.12 builds the ETag
    from the WSGI script's mtime, so a replaced image of the same size kept its ETag (304s and If-Range
    answers that mixed two images).
    """
    if firmware.send_with != "apache" or not request.environ.get("mod_wsgi.process_group"):
        return None
    try:
        below = path.relative_to(os.path.realpath(firmware.root))
    except ValueError:
        return None  # a model directory linked from outside the root is not under the Alias
    response = Response()
    response.headers["Location"] = firmware.apache_alias + quote(below.as_posix())
    return response


def stream(request: Request, path: Path) -> Response:
    """Stream one file (sendfile under mod_wsgi), answering If-None-Match/If-Modified-Since and Range."""
    environ = request.environ
    if "HTTP_RANGE" in environ:
        ranges = parse_range_header(environ["HTTP_RANGE"])
        if ranges is None or ranges.units != "bytes" or len(ranges.ranges) != 1:
            # Malformed, not bytes, or several ranges (which need multipart/byteranges): RFC 9110 lets a server
            # ignore Range, and the whole file serves the client better than Werkzeug's 416.
            environ = {k: v for k, v in environ.items() if k != "HTTP_RANGE"}
    if "wsgi.file_wrapper" not in environ:
        environ = {**environ, "wsgi.file_wrapper": _in_blocks}
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


def _in_blocks(file: Any, buffer_size: int = 8192) -> FileWrapper:
    return FileWrapper(file, FILE_BLOCK)
