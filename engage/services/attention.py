"""What staff should look at first: urgent messages, recent campaigns, surveys being written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engage.models import Campaign, Message, SurveyDraft
from engage.states import Direction


@dataclass(frozen=True)
class Attention:
    urgent_messages: int
    recent_campaigns: list[Campaign]
    drafts: list[SurveyDraft]


def needs_attention(session: Session, *, since: datetime) -> Attention:
    """Counts and lists for /staff; never a message's text or a worker's number."""
    urgent = session.scalar(
        select(func.count(Message.id)).where(
            Message.direction == Direction.IN,
            Message.is_urgent.is_(True),
            Message.is_simulated.is_(False),
            Message.created_at >= since,
        )
    )
    campaigns = session.scalars(
        select(Campaign).where(Campaign.created_at >= since).order_by(Campaign.created_at.desc())
    ).all()
    drafts = session.scalars(select(SurveyDraft).order_by(SurveyDraft.updated_at.desc())).all()
    return Attention(int(urgent or 0), list(campaigns), list(drafts))
