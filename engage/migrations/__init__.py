"""Alembic migrations, run by `engage db upgrade` (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from engage.privacy import Vault

HERE = Path(__file__).resolve().parent


def alembic_config(engine: Engine, vault: Vault | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["engine"] = engine
    # Migrations that re-encrypt stored data read it (0006: each contact's own key).
    config.attributes["vault"] = vault
    return config


def upgrade(engine: Engine, revision: str = "head", *, vault: Vault | None = None) -> None:
    """Bring the database to a revision (the vault is needed where stored data is re-encrypted)."""
    command.upgrade(alembic_config(engine, vault), revision)
