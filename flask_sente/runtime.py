"""Which concurrency the process runs on: real threads, or gevent greenlets.

flask_sente uses the ``threading`` and ``selectors`` modules only. Under gevent (for example
``gunicorn -k gevent``, which monkey-patches them) the same code runs on greenlets, so there
is one code path for both.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("flask_sente.runtime")


def concurrency_mode() -> str:
    """``"gevent"`` when the threading module is monkey-patched by gevent, else ``"threading"``."""
    try:
        from gevent import monkey
    except ImportError:
        return "threading"
    return "gevent" if monkey.is_module_patched("threading") else "threading"
