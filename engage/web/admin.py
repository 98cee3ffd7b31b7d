"""Admin pages: the audit trail."""

from __future__ import annotations

from flask import Blueprint, render_template

from engage import db
from engage.services.accounts import audit_trail
from engage.web.decorators import ADMIN, role_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/audit")
@role_required(*ADMIN)
def audit() -> str:
    return render_template("audit.html", entries=audit_trail(db.session()))
