"""Database plumbing: one asyncpg pool per service, bound to the service's own schema,
and a small forward-only migration runner (the delivery tables, then the service's files)."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)
DELIVERY_SQL = Path(__file__).parent / "sql" / "delivery.sql"
AUDIT_SQL = Path(__file__).parent / "sql" / "audit.sql"
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _check_schema(schema: str) -> str:
    if not _SCHEMA_RE.match(schema):
        raise ValueError(f"schema name {schema!r} must be lower-case letters, digits and '_'")
    return schema


async def create_pool(database_url: str, schema: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections see the service's schema first. Creates the schema if missing
    (a service's own role may not: its schema is made for it, see ``lgsp stack``)."""
    _check_schema(schema)
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
            await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    return await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        timeout=10,
        command_timeout=30,
        server_settings={"search_path": f'"{schema}", public', "application_name": schema, "timezone": "UTC"},
        reset=_keep_session,
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a pooled connection needs on release: nothing beyond the rollback of a transaction
    left open, which asyncpg does before calling this. The default reset (RESET ALL, UNLISTEN,
    advisory unlock, CLOSE ALL) costs a round trip and a transaction on every release, and our
    pooled connections never change session state: the schema and zone are set once at connect,
    locks are transaction-scoped, and LISTEN runs on the outbox relay's own connection."""


async def migrate(pool: asyncpg.Pool, schema: str, migrations_dir: Path | None) -> list[str]:
    """Apply the delivery and audit tables and the service's ``NNN_name.sql`` files not applied yet.

    Runs under an advisory lock so two instances starting together do not race.
    """
    files = [("000_delivery.sql", DELIVERY_SQL), ("000_audit.sql", AUDIT_SQL)]
    if migrations_dir is not None:
        files += sorted((p.name, p) for p in migrations_dir.glob("*.sql"))
    applied: list[str] = []
    async with pool.acquire() as conn:
        if await _all_applied(conn, files):
            return []  # nothing to change: a service's own role, which may not, needs no DDL here
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{schema}")
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, sha256 text NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["name"]: r["sha256"] for r in await conn.fetch("SELECT name, sha256 FROM schema_migrations")}
            for name, path in files:
                sql = path.read_text(encoding="utf-8")
                digest = hashlib.sha256(sql.encode("utf-8")).hexdigest()
                if name in done:
                    if done[name] != digest:
                        raise RuntimeError(
                            f"migration {name} of schema {schema} changed after it was applied; "
                            "add a new migration instead (or `lgsp stack reset` a local stack)"
                        )
                    continue
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name, sha256) VALUES ($1, $2)", name, digest)
                applied.append(name)
    if applied:
        log.info("db.migrated schema=%s files=%s", schema, ",".join(applied))
    return applied


async def _all_applied(conn: asyncpg.Connection, files: list[tuple[str, Path]]) -> bool:
    """Whether every file is recorded as applied, unchanged (a changed one is migrate's error)."""
    if not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        return False
    done = {r["name"]: r["sha256"] for r in await conn.fetch("SELECT name, sha256 FROM schema_migrations")}
    return all(
        done.get(name) == hashlib.sha256(path.read_text(encoding="utf-8").encode("utf-8")).hexdigest()
        for name, path in files
    )
