"""Each example runs as its own server process; fixtures come from tests/conftest.py."""
