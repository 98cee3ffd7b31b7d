"""Personal data at rest: encrypted with Fernet, numbers found again by a keyed hash; senders.

Two keys. The PII key (the `Vault`) encrypts what belongs to no contact (spool files, the
address of a sender that is not a phone) and wraps each contact's own key. A contact's key
(`ContactCipher`) encrypts that contact's texts and every copy of its number; erasure destroys
it (engage/services/erasure.py), so no copy left in WAL files or backups can be read with the
live database's keys.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

import phonenumbers
from cryptography.fernet import Fernet

from engage.channels import split_address

_E164 = re.compile(r"^\+[1-9]\d{7,14}$")


class PhoneNumberError(ValueError):
    """A number that cannot be read as a phone number; `kind` says how (for the pages' words)."""

    def __init__(self, message: str, kind: str = "not_a_number") -> None:
        super().__init__(message)
        self.kind = kind  # not_a_number | impossible_number


@dataclass(frozen=True)
class Sender:
    """Who wrote: the channel, the E.164 number, and the address to reply to as Twilio wrote it."""

    channel: str  # a name in channels.CHANNELS
    e164: str | None  # None when the sender is not a phone number (short code, alphanumeric)
    address: str

    @property
    def is_phone(self) -> bool:
        return self.e164 is not None


def parse_sender(raw: str) -> Sender:
    """Read a Twilio `From` (`+1…` or `whatsapp:+52…`); Twilio has authenticated it already."""
    raw = raw.strip()
    channel, number = split_address(raw)
    return Sender(channel=channel.name, e164=number if _E164.match(number) else None, address=raw)


# WhatsApp writes Mexican and Argentine mobiles with a 1 or 9 after the country code; SMS
# without. Both forms of a number fold to the short one for look-up.
_SECOND_FORMS = {"+521": "+52", "+549": "+54"}


def has_one_form(e164: str) -> bool:
    """Whether every contact found by this number's hash was stored with this very number."""
    return not e164.startswith(tuple(_SECOND_FORMS.values()))


def lookup_form(e164: str) -> str:
    """The form a number is looked up by: WhatsApp's +521/+549 mobiles fold to +52/+54."""
    if len(e164) == 14 and e164[:4] in _SECOND_FORMS:
        return _SECOND_FORMS[e164[:4]] + e164[4:]
    return e164


def normalize_number(raw: str, default_region: str) -> str:
    """An imported number in E.164; numbers without + use the default region."""
    try:
        parsed = phonenumbers.parse(raw, None if raw.strip().startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneNumberError(f"not a phone number: {exc}") from None
    if not phonenumbers.is_possible_number(parsed):
        raise PhoneNumberError("not a possible phone number", "impossible_number")
    return lookup_form(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


class ContactErasedError(LookupError):
    """The contact's key is gone: it was erased, and nothing of it can be read any more."""


class ContactCipher:
    """Encrypts and decrypts one contact's texts and number under the contact's own key."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def decrypt(self, token: str) -> str:
        return self._fernet.decrypt(token.encode()).decode()

    def encrypt_optional(self, text: str | None) -> str | None:
        return None if text is None else self.encrypt(text)


class Vault:
    """Encrypts and hashes phone numbers with the PII key; wraps contacts' keys."""

    def __init__(self, pii_key: str) -> None:
        self._fernet = Fernet(pii_key.encode())
        self._hash_key = hashlib.sha256(b"engage phone lookup\0" + pii_key.encode()).digest()

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def decrypt(self, token: str) -> str:
        return self._fernet.decrypt(token.encode()).decode()

    def encrypt_bytes(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def decrypt_bytes(self, token: bytes) -> bytes:
        return self._fernet.decrypt(token)

    def new_contact_key(self) -> tuple[str, ContactCipher]:
        """A new contact's key: as stored (wrapped with the PII key), and ready to use."""
        key = Fernet.generate_key()
        return self._fernet.encrypt(key).decode(), ContactCipher(key)

    def contact_cipher(self, key_encrypted: str | None) -> ContactCipher:
        """A contact's cipher from its stored key; ContactErasedError once the key is gone."""
        if not key_encrypted:
            raise ContactErasedError("the contact was erased")
        return ContactCipher(self._fernet.decrypt(key_encrypted.encode()))

    def phone_hash(self, e164: str) -> str:
        """The keyed hash a contact is found by (of the folded look-up form)."""
        return hmac.new(self._hash_key, lookup_form(e164).encode(), hashlib.sha256).hexdigest()
