"""State DB: upgrades of older databases."""

import sqlite3


from crawler.store.db import StateDB


def test_db_from_an_older_version_gains_the_new_columns(tmp_path):
    path = tmp_path / "old.db"
    StateDB(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:  # an older finpatrol had no gone_at column
        conn.execute("ALTER TABLE pages DROP COLUMN gone_at")
        assert "gone_at" not in {row[1] for row in conn.execute("PRAGMA table_info(pages)")}
    db = StateDB(f"sqlite:///{path}")
    try:
        columns = {row[1] for row in db.execute("PRAGMA table_info(pages)")}
        assert "gone_at" in columns
        db.execute("SELECT gone_at FROM pages")
    finally:
        db.close()
