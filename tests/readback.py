"""Reading back, in tests, what a worker wrote: stored under the contact's own key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from engage import db
from engage.models import Answer, Contact, Conversation, Message
from engage.privacy import ContactCipher


def cipher(app, contact_id: int) -> ContactCipher:
    """A contact's cipher (inside an app context)."""
    key = db.session().scalar(select(Contact.key_encrypted).where(Contact.id == contact_id))
    return app.extensions["engage.vault"].contact_cipher(key)


def body(app, message: Message) -> str:
    """A message's text: an inbound one from a contact, and a staff reply, are stored
    encrypted."""
    if message.contact_id is None or not message.body:
        return message.body
    if message.direction != "in" and message.kind != "staff_reply":
        return message.body
    return cipher(app, message.contact_id).decrypt(message.body)


def media_url(app, message: Message) -> str | None:
    if message.direction != "in" or message.contact_id is None or message.media_url is None:
        return message.media_url
    return cipher(app, message.contact_id).decrypt(message.media_url)


def value(app, answer: Answer) -> Any:
    """An answer's value: a free-text one is stored encrypted ({"c": …})."""
    stored = answer.value or {}
    if "c" in stored:
        return cipher(app, answer.contact_id).decrypt(stored["c"])
    return stored.get("v")


def raw_text(app, answer: Answer) -> str | None:
    if answer.raw_text is None:
        return None
    return cipher(app, answer.contact_id).decrypt(answer.raw_text)


def misses(app, conversation: Conversation) -> list[str]:
    texts = (conversation.misses or {}).get("texts", [])
    return [cipher(app, conversation.contact_id).decrypt(text) for text in texts]


def inbound_bodies(app, *criteria: Any) -> list[str]:
    """The texts of inbound messages (matching the criteria), in order."""
    with app.app_context():
        rows = db.session().scalars(
            select(Message).where(Message.direction == "in", *criteria).order_by(Message.id)
        )
        return [body(app, m) for m in rows]


def address(app, message: Message) -> str:
    """The address a message went to or came from (under its contact's key, or the PII key
    for a row linked to nobody)."""
    if message.contact_id is None:
        return app.extensions["engage.vault"].decrypt(message.their_address_encrypted)
    return cipher(app, message.contact_id).decrypt(message.their_address_encrypted)


def phone(app, contact: Contact) -> str:
    return (
        app.extensions["engage.vault"]
        .contact_cipher(contact.key_encrypted)
        .decrypt(contact.phone_encrypted)
    )


def new_contact(app, phone: str, **fields: Any) -> tuple[Contact, ContactCipher]:
    """A contact as Engage writes one (its own key), not yet added to a session."""
    vault = app.extensions["engage.vault"]
    key_encrypted, contact_cipher = vault.new_contact_key()
    contact = Contact(
        phone_hash=vault.phone_hash(phone),
        phone_encrypted=contact_cipher.encrypt(phone),
        key_encrypted=key_encrypted,
        **fields,
    )
    return contact, contact_cipher


def answers(app) -> dict[str, tuple[str, object]]:
    """Each question's answer: its status and stored value (a text answer's value is
    encrypted, shown as None)."""
    with app.app_context(), db.transaction() as session:
        rows = session.execute(select(Answer.question_id, Answer.status, Answer.value)).all()
    return {
        q: (status, value.get("v") if isinstance(value, dict) else value)
        for q, status, value in rows
    }
