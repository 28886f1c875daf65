"""The ``legato`` command: operate legato from the terminal.

Every command takes ``--store URL`` (or the environment variable
``LEGATO_STORE``; default ``legato.db``) and, except ``worker``, works as a
client: it starts no worker. Read commands take ``--json``. Exit status: 0
when it went well, 1 when the workflow was not found, failed, or the store
could not be reached, 2 for a usage error.

Example::

    $ legato list --status failed --store postgresql://app@db/prod
    $ legato show order-42
    $ legato signal expense-7 approval '{"by": "ana"}'
    $ legato worker myapp.workflows --concurrency 50
    $ legato schedules --json
    $ legato export order-42 > order-42.json
    $ legato replay --app myapp.workflows --file order-42.json

The command needs the ``cli`` extra (``pip install 'legato[cli]'``: Click and
Rich); ``import legato`` does not import them.
"""

from __future__ import annotations

from . import (  # noqa: F401  (registers their commands)
    _control,
    _inspect,
    _replay,
    _schedules,
    _tail,
    _worker,
)
from ._app import app, main

__all__ = ["app", "main"]
