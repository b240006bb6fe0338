"""``application`` for mod_wsgi and other WSGI servers, configured like the command line
(``AUTOPROV_CONFIG`` or /etc/autoprov/autoprov.toml, plus the ``AUTOPROV_*`` overrides).

    WSGIScriptAlias / /path/to/venv/lib/python3.11/site-packages/autoprov/wsgi.py
"""

from autoprov.web import create_app

application = create_app()
