"""The ledger's per-chunk statements: a whole chunk in one parameter (a JSON array), one text each.

Each statement takes a chunk's rows as one JSON array of arrays, expanded by the database itself
(`json_array_elements` on PostgreSQL, `json_each` on SQLite), so its text never depends on how many
rows there are: compiled once, prepared once per connection, and with no bind-parameter limit. On
PostgreSQL a chunk's open (read everything, note the submissions) and its settlement (every table)
are one statement each, data-modifying CTEs included; SQLite runs the same parts one by one in a
transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import orjson
from sqlalchemy import BigInteger, BindParameter, Row, Text, TextClause, bindparam, text
from sqlalchemy.sql.selectable import TextualSelect

from shared.delivery.ledger_schema import (
    Decision,
    InFlight,
    Parked,
    Settlement,
    UtcDateTime,
    judge,
)
from shared.delivery.worker import EventIdentity

# (kind, key, s1, s2, n, at) of every row the read returns:
#   e  event_id   outcome
#   r  record_id  reference  last_event_id  applied_version
#   f  record_id  event_id   operation      record_version  started_at   (in flight)
#   p  record_id  event_id   location       seq             parked_at
_READ_PARTS = {
    "e": "SELECT 'e' AS kind, e.event_id AS k, e.outcome AS s1, CAST(NULL AS TEXT) AS s2, "
    "CAST(NULL AS BIGINT) AS n, {null_at} AS at FROM regbridge_events AS e "
    "WHERE e.register = :register AND e.event_id IN (SELECT event_id FROM batch)",
    "r": "SELECT 'r' AS kind, r.record_id AS k, r.reference AS s1, r.last_event_id AS s2, "
    "r.applied_version AS n, {null_at} AS at "
    "FROM regbridge_records AS r "
    "WHERE r.register = :register AND r.record_id IN (SELECT record_id FROM batch)",
    "f": "SELECT 'f' AS kind, f.record_id AS k, f.event_id AS s1, f.operation AS s2, "
    "f.record_version AS n, f.started_at AS at "
    "FROM regbridge_inflight AS f "
    "WHERE f.register = :register AND f.record_id IN (SELECT record_id FROM batch)",
    "p": "SELECT 'p' AS kind, p.record_id AS k, p.event_id AS s1, p.location AS s2, "
    "p.seq AS n, p.parked_at AS at "
    "FROM regbridge_parked AS p "
    "WHERE p.register = :register AND p.record_id IN (SELECT record_id FROM batch)",
}

_BEGIN = """INSERT INTO regbridge_inflight
    (register, record_id, event_id, record_version, operation, started_at)
SELECT :register, b.record_id, b.event_id, b.record_version, b.operation, {now}
FROM ({begun}) AS b WHERE true ORDER BY b.n
ON CONFLICT (register, record_id) DO UPDATE SET event_id = excluded.event_id,
    record_version = excluded.record_version, operation = excluded.operation,
    started_at = excluded.started_at"""

# the record's applied version never goes down
_APPLY = """INSERT INTO regbridge_records
    (register, record_id, applied_version, reference, last_event_id, updated_at)
SELECT :register, a.record_id, a.record_version, a.reference, a.event_id, {now}
FROM ({applied}) AS a WHERE true ORDER BY a.n
ON CONFLICT (register, record_id) DO UPDATE SET applied_version = excluded.applied_version,
    reference = excluded.reference, last_event_id = excluded.last_event_id,
    updated_at = excluded.updated_at
WHERE excluded.applied_version >= regbridge_records.applied_version"""

# the strongest outcome wins: accepted > skipped > dead_lettered (a dead letter again: its time)
_OUTCOMES = """INSERT INTO regbridge_events
    (register, event_id, record_id, record_version, outcome, at)
SELECT :register, o.event_id, o.record_id, o.record_version, o.outcome, {now}
FROM ({outcomes}) AS o WHERE true ORDER BY o.n
ON CONFLICT (register, event_id) DO UPDATE SET
    record_id = CASE WHEN excluded.outcome = 'dead_lettered'
        THEN regbridge_events.record_id ELSE excluded.record_id END,
    record_version = CASE WHEN excluded.outcome = 'dead_lettered'
        THEN regbridge_events.record_version ELSE excluded.record_version END,
    outcome = excluded.outcome, at = excluded.at
WHERE excluded.outcome = 'accepted'
    OR (excluded.outcome = 'skipped' AND regbridge_events.outcome <> 'accepted')
    OR (excluded.outcome = 'dead_lettered' AND regbridge_events.outcome = 'dead_lettered')"""

# in-flight rows done: every settled record's, and each accepted event's own
# (the first IN finds the rows by key, the second keeps the right ones)
_LANDED = """DELETE FROM regbridge_inflight WHERE register = :register
    AND record_id IN (SELECT d.record_id FROM ({done}) AS d
        UNION ALL SELECT a.record_id FROM ({landed}) AS a)
    AND (record_id IN (SELECT d.record_id FROM ({done}) AS d)
        OR (record_id, event_id) IN (SELECT a.record_id, a.event_id FROM ({landed}) AS a))"""

# a move keeps the event's seq (its place in line) and parked_at
_PARK = """INSERT INTO regbridge_parked (register, record_id, event_id, location, parked_at)
SELECT :register, k.record_id, k.event_id, k.location, {now}
FROM ({park}) AS k WHERE true ORDER BY k.n
ON CONFLICT (register, record_id, event_id) DO UPDATE SET location = excluded.location"""

_UNPARK = """DELETE FROM regbridge_parked WHERE register = :register
    AND (record_id, event_id) IN (SELECT u.record_id, u.event_id FROM ({unpark}) AS u)"""

# JSON parameters: the columns of each array element, in order (all text but where typed)
COLUMNS: dict[str, tuple[str, ...]] = {
    "events": ("event_id", "record_id"),
    "begun": ("event_id", "record_id", "record_version:b", "operation"),
    "applied": ("event_id", "record_id", "record_version:b", "reference"),
    "outcomes": ("event_id", "record_id", "record_version:b", "outcome"),
    "done": ("record_id",),
    "landed": ("event_id", "record_id"),
    "park": ("event_id", "record_id", "location"),
    "unpark": ("event_id", "record_id"),
}
SETTLE_PARTS = (  # (statement, its JSON parameters), in the order they run on SQLite
    (_APPLY, ("applied",)),
    (_OUTCOMES, ("outcomes",)),
    (_LANDED, ("done", "landed")),
    (_PARK, ("park",)),
    (_UNPARK, ("unpark",)),
)
_RESULT = {"kind": Text, "k": Text, "s1": Text, "s2": Text, "n": BigInteger, "at": UtcDateTime}


class ChunkSql:
    """The per-chunk statements of one dialect, built once."""

    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"
        self._now = "CAST(:now AS TIMESTAMP WITH TIME ZONE)" if self.postgres else ":now"
        self._null_at = "CAST(NULL AS TIMESTAMP WITH TIME ZONE)" if self.postgres else "NULL"
        batch = f"WITH batch AS ({self._rows('events')})"
        self.read = self._typed(f"{batch}\n{self._union('erfp')}", "events")
        self.decide = self._typed(f"{batch}\n{self._union('erf')}", "events")
        self.parked = self._typed(f"{batch}\n{self._union('p')}", "events")
        self.begin = self._statement(_BEGIN, ("begun",))
        self.settle_parts = tuple(
            (self._statement(sql, params), params) for sql, params in SETTLE_PARTS
        )
        if self.postgres:  # the read and the notes in one statement; the settlement in one
            begun = self._fill(_BEGIN, ("begun",))
            self.open = self._typed(
                f"{batch}, begun AS ({begun})\n{self._union('erfp')}", "events", "begun"
            )
            ctes = ", ".join(
                f"s{n} AS ({self._fill(sql, params)})"
                for n, (sql, params) in enumerate(SETTLE_PARTS)
            )
            every = tuple(p for _, params in SETTLE_PARTS for p in params)
            self.settle = self._statement(f"WITH {ctes}\nSELECT 1", every)

    def _rows(self, param: str) -> str:
        """A chunk's JSON parameter as rows: its columns by name, and n, its place in the array."""
        columns = []
        for index, column in enumerate(COLUMNS[param]):
            name, _, kind = column.partition(":")
            value = f"j.value ->> {index}"
            columns.append(f"CAST({value} AS BIGINT) AS {name}" if kind else f"{value} AS {name}")
        # (built from this module's constants only: the values are bound, never spliced in)
        if self.postgres:
            source = f"json_array_elements(CAST(:{param} AS JSON)) WITH ORDINALITY AS j(value, n)"
            return f"SELECT {', '.join(columns)}, j.n FROM {source}"  # noqa: S608 (see above)
        return f"SELECT {', '.join(columns)}, j.key AS n FROM json_each(:{param}) AS j"  # noqa: S608

    def _union(self, kinds: str) -> str:
        return "\nUNION ALL ".join(_READ_PARTS[k].format(null_at=self._null_at) for k in kinds)

    def _fill(self, sql: str, params: tuple[str, ...]) -> str:
        return sql.format(now=self._now, **{p: self._rows(p) for p in params})

    def _statement(self, sql: str, params: tuple[str, ...]) -> TextClause:
        binds: list[BindParameter[Any]] = [bindparam(p, type_=Text) for p in params]
        if "{now}" in sql:
            binds.append(bindparam("now", type_=UtcDateTime()))
        return text(self._fill(sql, params)).bindparams(bindparam("register", type_=Text), *binds)

    def _typed(self, sql: str, *params: str) -> TextualSelect:
        statement = text(sql).bindparams(
            bindparam("register", type_=Text),
            *(bindparam(p, type_=Text) for p in params),
            *([bindparam("now", type_=UtcDateTime())] if ":now" in sql else []),
        )
        return statement.columns(**_RESULT)


# --- a chunk's rows, to and from the statements --------------------------------------------------


class _Applied(NamedTuple):
    """A record's row, as `judge` reads it."""

    reference: str
    applied_version: int
    last_event_id: str


def to_json(rows: Sequence[Sequence[Any]]) -> str:
    return orjson.dumps(rows).decode()


def event_pairs(identities: Iterable[EventIdentity]) -> list[list[str]]:
    return [[i.event_id, i.record_id] for i in identities]


def begun_rows(identities: Iterable[EventIdentity]) -> list[list[Any]]:
    """The in-flight rows, one per record, in one lock order for every replica (by record)."""
    return [
        [i.event_id, i.record_id, i.record_version, i.operation]
        for i in sorted(identities, key=lambda i: i.record_id)
    ]


def judged(identities: Sequence[EventIdentity], rows: Iterable[Row[Any]]) -> list[Decision]:
    """Each identity decided from the rows a read returned (kinds e, r and f)."""
    outcome_of: dict[str, str] = {}
    record_of: dict[str, _Applied] = {}
    flight_of: dict[str, InFlight] = {}
    for kind, key, s1, s2, n, at in rows:
        if kind == "e":
            outcome_of[key] = s1
        elif kind == "r":
            record_of[key] = _Applied(s1, int(n), s2)
        elif kind == "f":
            flight_of[key] = InFlight(s1, int(n), s2, at)
    return [
        judge(i, outcome_of.get(i.event_id), record_of.get(i.record_id), flight_of.get(i.record_id))
        for i in identities
    ]


def parked_of(record_ids: Iterable[str], rows: Iterable[Row[Any]]) -> dict[str, list[Parked]]:
    """Each record's parked events (kind p), oldest first; [] for a record with none."""
    found: dict[str, list[Parked]] = {record_id: [] for record_id in record_ids}
    for kind, key, s1, s2, n, at in rows:
        if kind == "p" and key in found:
            found[key].append(Parked(s1, s2, int(n), at))
    for waiting in found.values():
        waiting.sort(key=lambda p: p.seq)
    return found


_STRENGTH = {"accepted": 3, "skipped": 2, "dead_lettered": 1}


def settlement_rows(s: Settlement) -> dict[str, list[list[Any]]]:
    """A settlement as the rows of each JSON parameter, reduced so that one multi-row statement
    per table leaves what applying its items one by one, in the old order, would have left: a
    record's applied version is the last of its highest; an event's outcome the last of its
    strongest; a parked event keeps its first place and takes its last location, and is not
    parked at all when the same settlement releases it."""
    applied: dict[str, tuple[EventIdentity, str]] = {}
    for identity, reference in s.accepted:
        kept = applied.get(identity.record_id)
        if kept is None or identity.record_version >= kept[0].record_version:
            applied[identity.record_id] = (identity, reference)
    outcomes: dict[str, tuple[EventIdentity, str]] = {}
    for identities, outcome in (
        ([i for i, _ in s.accepted], "accepted"),
        (s.skipped, "skipped"),
        (s.dead_lettered, "dead_lettered"),
    ):
        for identity in identities:
            had = outcomes.get(identity.event_id)
            if had is None or _STRENGTH[outcome] >= _STRENGTH[had[1]]:
                outcomes[identity.event_id] = (identity, outcome)
    released = {(i.record_id, i.event_id) for i in s.unpark}
    park: dict[tuple[str, str], str] = {}
    for identity, location in s.park:
        if (identity.record_id, identity.event_id) not in released:
            park[(identity.record_id, identity.event_id)] = location
    return {
        "applied": [
            [i.event_id, i.record_id, i.record_version, reference]
            for record_id, (i, reference) in sorted(applied.items())
        ],
        "outcomes": [
            [i.event_id, i.record_id, i.record_version, outcome]
            for event_id, (i, outcome) in sorted(outcomes.items())
        ],
        "done": [[record_id] for record_id in sorted(set(s.settled_records))],
        "landed": [[i.event_id, i.record_id] for i, _ in s.accepted],
        "park": [[event_id, record_id, where] for (record_id, event_id), where in park.items()],
        "unpark": [[i.event_id, i.record_id] for i in s.unpark],
    }
