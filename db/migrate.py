"""Schema migrations: a db written by an older tierserve is moved up one version at a time.

`db.engine.create_schema` first creates the tables that are missing (the new ones of a
later version included), then, in one transaction that holds the `schema_version` row
(so two processes starting at once never migrate twice), runs the steps from the db's
version up to SCHEMA_VERSION. Portable SQL only: SQLite (3.35 or later, for DROP COLUMN)
and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, inspect, text

from base.errors import FailedPrecondition


def _v1_to_v2(conn: Connection) -> None:
    """Counts: the new `request_counts_recent` (created empty) holds 5 s buckets; the
    per-minute rows already there stay as they are. Pins: `placements.pinned` becomes rows
    in `pins`. Schema 1 could not tell an admin pin from a policy one and cleared every
    pin missing from the policy at the orchestrator's next load; so they move as 'policy'
    pins, which the next policy load keeps or clears exactly as schema 1 would have."""
    conn.execute(text("INSERT INTO pins (model, source, created_at) "
                      "SELECT model, 'policy', updated_at FROM placements WHERE pinned"))
    conn.execute(text("ALTER TABLE placements DROP COLUMN pinned"))


def _v2_to_v3(conn: Connection) -> None:
    """Counts split their errors into 4xx and 5xx. Rows already there cannot be split
    after the fact: their new columns start at 0 and their errors stay in `errors` (the
    total every stat and error rate still reads), so no request is put in the wrong class.
    A table this run created (from schema 1, `request_counts_recent`) has them already."""
    for table in ("request_counts", "request_counts_recent"):
        present = {c["name"] for c in inspect(conn).get_columns(table)}
        for column in ("errors_4xx", "errors_5xx"):
            if column in present:
                continue
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} INTEGER NOT NULL "
                              "DEFAULT 0"))


STEPS: dict[int, Callable[[Connection], None]] = {1: _v1_to_v2, 2: _v2_to_v3}


def upgrade(conn: Connection, found: int, target: int) -> None:
    """Run every step from version `found` to `target` on `conn` (one transaction)."""
    for version in range(found, target):
        step = STEPS.get(version)
        if step is None:
            raise FailedPrecondition(f"no migration from db schema version {version}")
        step(conn)
