"""flask_sente: channel sockets for Flask, speaking Sente's wire protocol."""

from __future__ import annotations

__version__ = "0.1.0"
