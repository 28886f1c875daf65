"""Testing helpers for code that uses legato.

The pytest plugin (:mod:`legato.testing.plugin`) is registered as an entry
point, so installing legato gives every test session its fixtures:
``legato_store_url`` and ``legato_runtime``. Importing this package imports
neither pytest nor the plugin.
"""
