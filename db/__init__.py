"""The db every tierserve part shares: SQLAlchemy 2 schema and the queries over it.

`db.engine.make_engine(url)` opens (and creates) the database; `db.queries` holds
every read and write the other parts make. SQLite (WAL) by default; any
SQLAlchemy URL works, PostgreSQL for several routers sharing one db.
"""
