"""Tables, one module per thing."""

from engage.models.answers import Answer
from engage.models.campaigns import Campaign
from engage.models.contact_imports import ContactImport
from engage.models.contacts import Contact
from engage.models.conversations import Conversation
from engage.models.erasure import DoNotContact, ThreadNote, TwilioDeletion
from engage.models.messages import Message
from engage.models.snapshots import ResultSnapshot
from engage.models.surveys import SurveyDraft, SurveyRecord, SurveyVersion
from engage.models.threads import Thread
from engage.models.users import AuditEntry, SignInFailure, User, UserSession

__all__ = [
    "Answer",
    "AuditEntry",
    "Campaign",
    "Contact",
    "ContactImport",
    "Conversation",
    "DoNotContact",
    "Message",
    "ResultSnapshot",
    "SignInFailure",
    "SurveyDraft",
    "SurveyRecord",
    "SurveyVersion",
    "Thread",
    "ThreadNote",
    "TwilioDeletion",
    "User",
    "UserSession",
]
