"""The WSGI app servers.py serves with each server: about 1.5 KB of bytes made once, with their ETag, through
Werkzeug's Request and Response as autoprov answers (304 to a matching If-None-Match). What is left is the
server's own cost per request. ``application`` for mod_wsgi, ``app`` for the others."""

import hashlib

from werkzeug.wrappers import Request, Response

BODY = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<phone mac="0004f2000001">\n'
    + b"".join(
        f'  <reg reg.{n}.displayName="Ada Lovelace" reg.{n}.address="10{n:04d}" reg.{n}.label="10{n:04d}" '
        f'reg.{n}.type="private" reg.{n}.auth.userId="10{n:04d}" reg.{n}.auth.password="{"x" * 32}" '
        f'reg.{n}.server.1.address="pbx.example.test" reg.{n}.server.1.port="5060" '
        f'reg.{n}.server.1.transport="UDPOnly" reg.{n}.server.1.expires="3600"/>\n'.encode()
        for n in (1, 2, 3, 4)
    )
    + b"</phone>\n"
)
ETAG = hashlib.sha256(BODY).hexdigest()[:32]


def application(environ, start_response):
    request = Request(environ)
    response = Response(BODY, mimetype="application/xml")
    response.headers["Cache-Control"] = "no-cache"
    response.set_etag(ETAG)
    return response.make_conditional(request)(environ, start_response)


app = application
