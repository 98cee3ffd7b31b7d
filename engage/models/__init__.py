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
from engage.models.voice import Call, CallStep, MediaFile, VoiceNote

__all__ = [
    "Answer",
    "Call",
    "CallStep",
    "AuditEntry",
    "Campaign",
    "Contact",
    "ContactImport",
    "Conversation",
    "DoNotContact",
    "MediaFile",
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
    "VoiceNote",
]
