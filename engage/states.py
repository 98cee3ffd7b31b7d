"""The states and names stored as text, each in one place: a member compares equal to its text."""

from __future__ import annotations

from enum import StrEnum


class MessageStatus(StrEnum):
    """A message row's status: ours before Twilio has it, then Twilio's, which only move
    forward (services/delivery.py)."""

    RECEIVED = "received"  # inbound
    PENDING = "pending"  # outbound, waiting to be claimed
    DISPATCHING = "dispatching"  # claimed: the send began
    CANCELLED = "cancelled"  # opted out or erased before it went
    UNCONFIRMED = "unconfirmed"  # its answer was lost and Twilio shows no such message
    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    READ = "read"


# Rows still on their way to Twilio: what comes after them in order waits for them.
UNSENT = (MessageStatus.PENDING, MessageStatus.DISPATCHING)


class QueueName(StrEnum):
    """The RQ queues, in the order workers take them: replies never wait behind bulk."""

    REPLIES = "replies"
    BULK = "bulk"


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class CampaignState(StrEnum):
    """A campaign's state: scheduled (its start is ahead), running, paused (nothing of it is
    sent), cancelled (its unsent rows dropped), finished (all sent, no reminder to come)."""

    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    FINISHED = "finished"


class RemindWhom(StrEnum):
    """Who a campaign's reminders go to: those who have not started, or not completed."""

    NOT_STARTED = "not_started"
    NOT_COMPLETED = "not_completed"


class CallStatus(StrEnum):
    """A call's status: ours before Twilio has it (`queued`, `dialing`), then Twilio's
    CallStatus, the furthest heard (status callbacks arrive in any order)."""

    QUEUED = "queued"  # a call we place, waiting for its turn
    DIALING = "dialing"  # handed to Twilio, no answer yet
    INITIATED = "initiated"
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    FAILED = "failed"
    CANCELED = "canceled"


# A call in one of these has ended: no later callback changes it.
CALL_ENDED = frozenset(
    {
        CallStatus.COMPLETED,
        CallStatus.BUSY,
        CallStatus.NO_ANSWER,
        CallStatus.FAILED,
        CallStatus.CANCELED,
    }
)


class CallPurpose(StrEnum):
    """Why a call is made: the worker called, we call back a missed call, or a campaign calls."""

    INBOUND = "inbound"
    CALLBACK = "callback"
    CAMPAIGN = "campaign"
