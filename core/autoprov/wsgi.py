"""``application`` for mod_wsgi and other WSGI servers, configured like the command line
(``AUTOPROV_CONFIG`` or /etc/autoprov/autoprov.toml, plus the ``AUTOPROV_*`` overrides).

Under Apache, point ``WSGIScriptAlias`` at a copy of deploy/apache/autoprov.wsgi (it imports this module,
so no Python version or site-packages path is written in Apache's configuration); its daemon process
finds the package through ``python-home``. deploy/apache/autoprov.conf is the whole example.
"""

from autoprov.web import create_app

application = create_app()
