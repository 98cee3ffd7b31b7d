"""Files at rest are the owner's only: the instance folder, its keys, the SQLite database and
its -wal/-shm, the spool."""

from __future__ import annotations

import os
import stat

from engage import create_app, db
from engage.migrations import upgrade


def mode(path) -> str:
    return oct(stat.S_IMODE(os.stat(path).st_mode))


def test_a_fresh_development_app_keeps_its_files_to_its_owner(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    old_umask = os.umask(0o022)  # the usual umask, under which new files are world-readable
    try:
        instance = tmp_path / "instance"
        app = create_app({"ENGAGE_ENV": "development", "INSTANCE_PATH": str(instance)})
        with app.app_context():
            upgrade(db.engine())
            with db.engine().connect() as connection:
                connection.exec_driver_sql("SELECT count(*) FROM users").all()
                assert mode(instance / "engage.db-wal") == "0o600"
                assert mode(instance / "engage.db-shm") == "0o600"
            from engage.intake import spool

            spool().append({"sid": "SM1", "from": "+15550100001", "body": "hola"})
        app.extensions["engage.engine"].dispose()
    finally:
        os.umask(old_umask)
    assert mode(instance) == "0o700"
    for name in ("secret_key", "pii_key", "engage.db"):
        assert mode(instance / name) == "0o600", name
    spool_dir = instance / "spool"
    assert mode(spool_dir) == "0o700"
    files = [p for p in spool_dir.rglob("*") if p.is_file()]
    assert files and all(mode(p) == "0o600" for p in files)


def test_an_existing_open_instance_folder_and_database_are_tightened(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    instance.chmod(0o755)
    database = instance / "engage.db"
    database.touch()
    database.chmod(0o644)
    app = create_app({"ENGAGE_ENV": "development", "INSTANCE_PATH": str(instance)})
    app.extensions["engage.engine"].dispose()
    assert (mode(instance), mode(database)) == ("0o700", "0o600")
