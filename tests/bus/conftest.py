"""The bus tests use the redis-server fixtures of tests/conftest.py."""
