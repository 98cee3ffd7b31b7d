"""What staff should look at first: urgent threads, recent campaigns, surveys being written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engage.models import Campaign, SurveyDraft
from engage.services.inbox import count_urgent_open_threads


@dataclass(frozen=True)
class Attention:
    urgent_threads: int  # threads waiting for a person with an urgent message in them
    recent_campaigns: list[Campaign]
    drafts: list[SurveyDraft]


def needs_attention(session: Session, *, since: datetime) -> Attention:
    """Counts and lists for /staff; never a message's text or a worker's number."""
    campaigns = session.scalars(
        select(Campaign).where(Campaign.created_at >= since).order_by(Campaign.created_at.desc())
    ).all()
    drafts = session.scalars(select(SurveyDraft).order_by(SurveyDraft.updated_at.desc())).all()
    return Attention(count_urgent_open_threads(session), list(campaigns), list(drafts))
