"""Reporting: ``tables`` (results/raw → results/tables and the README's tables) and ``plots``."""
