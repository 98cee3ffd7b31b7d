"""The staff frame: where each person lands, and what needs attention today."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from engage import db
from engage.db import utcnow
from engage.services.attention import needs_attention
from engage.web.decorators import STAFF, role_required

bp = Blueprint("staff", __name__)

# What /staff counts as recent: a week of urgent messages and campaigns.
RECENT = timedelta(days=7)


@bp.get("/")
def home() -> Response:
    """Each person where they work: staff and admins at /staff, the policy team at /results."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    if current_user.role in STAFF:
        return redirect(url_for("staff.dashboard"))
    return redirect(url_for("results.index"))


@bp.get("/staff")
@role_required(*STAFF)
def dashboard() -> str:
    attention = needs_attention(db.session(), since=utcnow() - RECENT)
    return render_template("staff/dashboard.html", attention=attention)
