"""autoprov: zero-touch provisioning for Polycom SIP phones, and the AGI side of the same database.

Plugins write ``from autoprov import hookimpl``.
"""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("autoprov")

__all__ = ["hookimpl", "__version__"]
