"""SQL access for BI tools: the read-only PostgreSQL role, the DuckDB read replica, `reporting sql`.

- grants.py:    what `bi_reader` may read on the PostgreSQL reporting server (and nothing else).
- replica.py:   the DuckDB read replica the stream publishes, because a DuckDB file that a writer
                holds cannot be opened by any other process, not even read-only.
- reader.py:    open the DuckDB reporting data for reading: the main file, or the replica when locked.
- sql_shell.py: `reporting sql` (psql on PostgreSQL, a small prompt on DuckDB).
"""
