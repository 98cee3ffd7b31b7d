"""A caller for tests: posts signed voice webhooks as Twilio would, follows the TwiML it gets
(a <Gather>'s action, a <Record>'s action, a <Redirect>), presses keys, and keeps what it heard.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from twilio_helpers import OUR_NUMBER, PUBLIC_URL, new_sid, post_signed


@dataclass
class Heard:
    """One TwiML document: what was said or played, and what it asks for next."""

    twiml: str
    root: ET.Element
    says: list[str] = field(default_factory=list)
    plays: list[str] = field(default_factory=list)
    # In order: ("say", text) or ("play", url), as the caller hears them.
    prompts: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def parse(cls, twiml: str) -> Heard:
        root = ET.fromstring(twiml)
        assert root.tag == "Response", twiml
        heard = cls(twiml, root)
        for element in root.iter():
            if element.tag == "Say":
                heard.says.append(element.text or "")
                heard.prompts.append(("say", element.text or ""))
            elif element.tag == "Play":
                heard.plays.append(element.text or "")
                heard.prompts.append(("play", element.text or ""))
        return heard

    def first(self, tag: str) -> ET.Element | None:
        return self.root.find(f".//{tag}")

    @property
    def gather(self) -> ET.Element | None:
        return self.first("Gather")

    @property
    def record(self) -> ET.Element | None:
        return self.first("Record")

    @property
    def hangs_up(self) -> bool:
        return self.first("Hangup") is not None

    @property
    def text(self) -> str:
        """Everything said, in one string (plays as [play])."""
        return " ".join(t if kind == "say" else "[play]" for kind, t in self.prompts)


class Caller:
    """One phone, one call at a time."""

    def __init__(self, client, token: str, phone: str, *, to: str = OUR_NUMBER) -> None:
        self.client = client
        self.token = token
        self.phone = phone
        self.to = to
        self.sid = ""
        self.heard: Heard | None = None
        self.history: list[Heard] = []
        self.last_status = 0

    def form(self, **extra: str) -> dict[str, str]:
        return {
            "CallSid": self.sid,
            "AccountSid": "AC" + "a" * 32,
            "From": self.phone,
            "To": self.to,
            "CallStatus": "in-progress",
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
            **extra,
        }

    def post(self, url: str, form: dict[str, str]) -> Heard:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        base = f"{parts.scheme}://{parts.netloc}" if parts.netloc else PUBLIC_URL
        response = post_signed(self.client, self.token, path, form, url_base=base)
        self.last_status = response.status_code
        assert response.status_code == 200, (response.status_code, response.data[:300])
        assert response.mimetype == "text/xml"
        self.heard = Heard.parse(response.get_data(as_text=True))
        self.history.append(self.heard)
        return self.heard

    # -- what a caller does

    def call(self) -> Heard:
        self.sid = new_sid("CA")
        return self.post(PUBLIC_URL + "/twilio/voice", self.form())

    def press(self, digits: str, *, finished_on_key: str = "") -> Heard:
        """Keys on the current <Gather> (as Twilio posts them: without the ending #)."""
        gather = self._gather()
        extra = {"Digits": digits}
        if finished_on_key:
            extra["FinishedOnKey"] = finished_on_key
        return self.post(gather.attrib["action"], self.form(**extra))

    def wait(self) -> Heard:
        """No key before the timeout: Twilio posts the action with empty Digits."""
        gather = self._gather()
        assert gather.attrib.get("actionOnEmptyResult") == "true", self.heard and self.heard.twiml
        return self.post(gather.attrib["action"], self.form(Digits=""))

    def leave_voice_note(self, seconds: int = 7) -> Heard:
        assert self.heard is not None
        record = self.heard.record
        assert record is not None, self.heard.twiml
        sid = new_sid("RE")
        url = f"https://api.twilio.com/2010-04-01/Accounts/AC{'a' * 32}/Recordings/{sid}"
        self.last_recording = sid
        return self.post(
            record.attrib["action"],
            self.form(
                RecordingUrl=url, RecordingSid=sid, RecordingDuration=str(seconds), Digits="1"
            ),
        )

    def follow_redirect(self) -> Heard:
        """What Twilio does after a <Record> that got nothing, or a <Dial> that ended."""
        assert self.heard is not None
        redirect = self.heard.first("Redirect")
        assert redirect is not None, self.heard.twiml
        return self.post(redirect.text or "", self.form())

    def repeat_last_request(self, form_extra: dict[str, str], url: str) -> Heard:
        return self.post(url, self.form(**form_extra))

    def _gather(self) -> ET.Element:
        assert self.heard is not None
        gather = self.heard.gather
        assert gather is not None, self.heard.twiml
        return gather
