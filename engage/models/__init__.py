"""Tables, one module per thing."""

from engage.models.answers import Answer
from engage.models.campaigns import Campaign
from engage.models.contacts import Contact
from engage.models.conversations import Conversation
from engage.models.messages import Message
from engage.models.surveys import SurveyVersion

__all__ = ["Answer", "Campaign", "Contact", "Conversation", "Message", "SurveyVersion"]
