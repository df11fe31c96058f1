"""The controller's SQLite database: the topology, port and trunk status, agents.

One file, one connection guarded by a lock (SQLite serialises writers anyway; the
controller writes a few rows per heartbeat).  Each resource is one row holding its JSON
document (:func:`~dpagent.controller.model.to_json`) with its kind, id and name beside it,
so that a topology reload is one transaction that replaces the resource rows.

The schema is versioned with SQLite's ``user_version``: :data:`MIGRATIONS` lists the steps,
each run once in its own transaction when a file of an older version is opened.  A file of
a newer version than this code knows is refused rather than misread.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable
from typing import Any

from dpagent.controller.model import (
    RESOURCE_KINDS,
    AgentRecord,
    Topology,
    from_json,
    to_json,
)

LOG = logging.getLogger(__name__)

MIGRATIONS: list[str] = [
    # 1: resources, status of ports and trunks, agents
    """
    CREATE TABLE resources (
        kind TEXT NOT NULL, id TEXT PRIMARY KEY, name TEXT NOT NULL, body TEXT NOT NULL,
        UNIQUE (kind, name));
    CREATE TABLE status (id TEXT PRIMARY KEY, status TEXT NOT NULL);
    CREATE TABLE agents (
        id TEXT PRIMARY KEY, agent_type TEXT NOT NULL, host TEXT NOT NULL,
        binary TEXT NOT NULL, topic TEXT NOT NULL, admin_state_up INTEGER NOT NULL,
        configurations TEXT NOT NULL, resource_versions TEXT NOT NULL,
        created_at REAL NOT NULL, started_at REAL NOT NULL, heartbeat_at REAL NOT NULL,
        UNIQUE (agent_type, host));
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(Exception):
    """The database cannot be used (newer schema, not a database...)."""


class Store:
    """``Store(path)`` opens (creating or upgrading) the database at ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: {exc}") from exc

    def _migrate(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: schema version {version} is newer than this "
                             f"controller's {SCHEMA_VERSION}; use a newer dpagent-controller")
        for number in range(version, SCHEMA_VERSION):
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for statement in MIGRATIONS[number].split(";"):
                        if statement.strip():
                            self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version = {number + 1}")
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            LOG.info("%s: schema upgraded to version %d", self.path, number + 1)

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, statements: Iterable[tuple[str, tuple[Any, ...]]]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in statements:
                    self._db.execute(sql, args)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # -- topology ----------------------------------------------------------------------------

    def load_topology(self) -> Topology:
        with self._lock:
            rows = self._db.execute("SELECT kind, body FROM resources ORDER BY rowid").fetchall()
        parts: dict[str, dict[str, Any]] = {kind: {} for kind in RESOURCE_KINDS}
        for kind, body in rows:
            if kind not in RESOURCE_KINDS:
                raise StoreError(f"{self.path}: unknown resource kind {kind!r}")
            item = from_json(RESOURCE_KINDS[kind], json.loads(body))
            parts[kind][item.id] = item
        return Topology(**parts)

    def save_topology(self, topology: Topology) -> None:
        """Replace every resource with those of ``topology`` (one transaction); the status
        of ports and trunks that are gone is forgotten."""
        statements: list[tuple[str, tuple[Any, ...]]] = [("DELETE FROM resources", ())]
        for kind, items in topology.by_kind().items():
            for item in items.values():
                statements.append(("INSERT INTO resources (kind, id, name, body) "
                                   "VALUES (?, ?, ?, ?)",
                                   (kind, item.id, item.name, json.dumps(to_json(item)))))
        statements.append(("DELETE FROM status WHERE id NOT IN (SELECT id FROM resources)",
                           ()))
        self._write(statements)

    # -- status ------------------------------------------------------------------------------

    def statuses(self) -> dict[str, str]:
        with self._lock:
            return dict(self._db.execute("SELECT id, status FROM status").fetchall())

    def set_statuses(self, statuses: dict[str, str]) -> None:
        self._write(("INSERT INTO status (id, status) VALUES (?, ?) ON CONFLICT (id) DO "
                     "UPDATE SET status = excluded.status", (k, v))
                    for k, v in statuses.items())

    # -- agents ------------------------------------------------------------------------------

    def agents(self) -> list[AgentRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, agent_type, host, binary, topic, admin_state_up, configurations, "
                "resource_versions, created_at, started_at, heartbeat_at FROM agents "
                "ORDER BY created_at, id").fetchall()
        return [AgentRecord(r[0], r[1], r[2], r[3], r[4], bool(r[5]), json.loads(r[6]),
                            json.loads(r[7]), r[8], r[9], r[10]) for r in rows]

    def put_agent(self, agent: AgentRecord) -> None:
        self._write([(
            "INSERT INTO agents (id, agent_type, host, binary, topic, admin_state_up, "
            "configurations, resource_versions, created_at, started_at, heartbeat_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "binary = excluded.binary, topic = excluded.topic, "
            "admin_state_up = excluded.admin_state_up, "
            "configurations = excluded.configurations, "
            "resource_versions = excluded.resource_versions, "
            "started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at",
            (agent.id, agent.agent_type, agent.host, agent.binary, agent.topic,
             int(agent.admin_state_up), json.dumps(agent.configurations),
             json.dumps(agent.resource_versions), agent.created_at, agent.started_at,
             agent.heartbeat_at))])

    def delete_agent(self, agent_id: str) -> None:
        self._write([("DELETE FROM agents WHERE id = ?", (agent_id,))])
