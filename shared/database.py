"""When a database error means the database is out of reach (wait for it), not a bug (raise it)."""

from __future__ import annotations

import asyncpg.exceptions as pg
from sqlalchemy import exc as sa

_OUT_OF_REACH = (
    OSError,  # connection refused or reset, no route: what a pooled reconnect raises
    TimeoutError,
    sa.OperationalError,  # the server went away, or SQLite is locked
    sa.InterfaceError,
    sa.TimeoutError,  # no connection free in the pool in time
    pg.PostgresConnectionError,
    pg.OperatorInterventionError,  # shutting down, starting up, crashed
    pg.InsufficientResourcesError,  # too many connections
    pg.InterfaceError,
)


def out_of_reach(error: BaseException) -> bool:
    """True when `error`, or what caused it, says the database cannot be reached now."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, _OUT_OF_REACH):
            return True
        if isinstance(seen, sa.DBAPIError) and seen.connection_invalidated:
            return True
        seen = seen.__cause__ or (seen.orig if isinstance(seen, sa.DBAPIError) else None)
        if seen is error:
            break
    return False
