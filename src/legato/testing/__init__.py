"""Testing helpers for legato workflows."""
