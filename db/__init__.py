"""The db every tierserve part shares: SQLAlchemy 2 schema and the queries over it.

`db.queries` is the one module other parts import: `queries.make_engine(url)` opens
(and creates) the database, and every read and write they make is there. Errors
leave db/ as tierserve's own (`base.errors`), never SQLAlchemy's. SQLite (WAL) by default; any
SQLAlchemy URL works, PostgreSQL for several routers sharing one db.
"""
