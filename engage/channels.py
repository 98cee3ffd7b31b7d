"""The messaging channels, each described once: how its addresses are written, which number it
sends from, whether replies need a window, how its texts are spelled and counted.

Everything that differs between SMS and WhatsApp is read from here, so another channel (a
voice line, another provider's messaging) is added by describing it in this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Channel:
    name: str
    # How Twilio writes an address on this channel: the prefix before the E.164 number.
    prefix: str
    # The setting that holds our number (or Messaging Service SID) on this channel.
    sender_setting: str
    # Free-form messages go only this long after the worker's last message (a template
    # otherwise); None: any time.
    window: timedelta | None
    # Billed by segments: system texts (and surveys with `sms_spelling: plain`) go in plain
    # GSM-7 spelling, and Twilio's own opt-out words are answered by Twilio.
    counts_segments: bool
    # One message per step: the parts of a step are joined (a template replaces them whole).
    joins_parts: bool
    # A placeholder number for development without the sender setting.
    development_sender: str
    # Replies are spoken in the call (TwiML), not sent as messages.
    is_spoken: bool = False
    # Where staff answer someone who wrote (or called) on this channel, when not on it: nobody
    # can speak into a worker's call, so a caller is answered by text.
    written_replies_on: str | None = None
    # A survey's recordings of these kinds go with its messages as media (engage/survey/voice.py
    # has the recordings; docs/voice.md §5).
    audio_extensions: tuple[str, ...] = ()

    def address(self, e164: str) -> str:
        """A number as this channel's address."""
        return self.prefix + e164

    def carries(self, media: str | None) -> bool:
        """Whether a recording (its media name) goes with this channel's messages."""
        return media is not None and media.rpartition(".")[2] in self.audio_extensions

    def is_window_open(self, last_inbound: datetime | None, now: datetime) -> bool:
        """Whether a free-form message may go now."""
        if self.window is None:
            return True
        return last_inbound is not None and now - last_inbound < self.window


SMS = Channel(
    name="sms",
    prefix="",
    sender_setting="TWILIO_SMS_FROM",
    window=None,
    counts_segments=True,
    joins_parts=False,
    development_sender="+15550000000",
)
WHATSAPP = Channel(
    name="whatsapp",
    prefix="whatsapp:",
    sender_setting="TWILIO_WHATSAPP_FROM",
    window=timedelta(hours=24),
    counts_segments=False,
    joins_parts=True,
    development_sender="whatsapp:+15550000000",
    # WhatsApp plays MPEG audio, not WAV; Twilio takes at most 500 KB of it per message.
    audio_extensions=("mp3",),
)
# A phone call: the same surveys heard, answered with the keypad (services/voice.py).
VOICE = Channel(
    name="voice",
    prefix="",
    sender_setting="TWILIO_VOICE_FROM",
    window=None,
    counts_segments=False,
    joins_parts=True,
    development_sender="+15550000000",
    is_spoken=True,
    written_replies_on="sms",
)
# The channels messages are sent on (campaigns, imports, the contacts filter, the simulator).
CHANNELS = {channel.name: channel for channel in (SMS, WHATSAPP)}
_EVERY_CHANNEL = {**CHANNELS, VOICE.name: VOICE}


def channel_named(name: str) -> Channel:
    return _EVERY_CHANNEL[name]


def written_reply_channel(channel: Channel) -> Channel:
    """The channel a staff member's written reply goes on, to someone reached on `channel`."""
    return _EVERY_CHANNEL[channel.written_replies_on] if channel.written_replies_on else channel


def split_address(raw: str) -> tuple[Channel, str]:
    """The channel of an address as Twilio writes it, and the address without its prefix."""
    for channel in CHANNELS.values():
        if channel.prefix and raw.startswith(channel.prefix):
            return channel, raw[len(channel.prefix) :]
    return SMS, raw
