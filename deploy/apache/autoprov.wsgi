# mod_wsgi's entry point for autoprov: copy to /etc/autoprov/autoprov.wsgi (the vhost's WSGIScriptAlias).
# It names no Python version or site-packages path, so it survives upgrades of the virtualenv.
from autoprov.wsgi import application  # noqa: F401
