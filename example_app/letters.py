"""The letters the shop sends, built and sent with unchanged Flask-Mail calls.

Nothing here knows about SMTP accounts: the extension routes each letter
by its From address, as it would in any existing site.
"""

from __future__ import annotations

import typing as t

from flask import current_app, url_for
from flask_mail import Message
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer

from .models import Subscriber, User, db

if t.TYPE_CHECKING:
    from flask_mail import Mail

RESET_MAX_AGE_S = 3600


def _mail() -> Mail:
    return t.cast("Mail", current_app.extensions["mail"])


def send_contact_letter(name: str, email: str, text: str) -> Message:
    """A transactional letter to the shop owner, from the site's default sender."""
    message = Message(
        subject=f"Contact form: message from {name}",
        recipients=[current_app.config["SHOP_OWNER"]],
        reply_to=(name, email),
        body=f"{name} <{email}> wrote through the contact form:\n\n{text}\n",
    )
    _mail().send(message)
    return message


def unsubscribe_token(subscriber: Subscriber) -> str:
    return URLSafeSerializer(current_app.secret_key, salt="unsubscribe").dumps(subscriber.email)  # type: ignore[arg-type]


def subscriber_email(token: str) -> str | None:
    try:
        return t.cast(str, URLSafeSerializer(current_app.secret_key, salt="unsubscribe").loads(token))  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - any bad token is simply not valid
        return None


def send_newsletter(subject: str, body: str, subscribers: t.Sequence[Subscriber]) -> int:
    """One bulk letter per subscriber, all inside one ``mail.connect()`` block.

    ``List-Unsubscribe`` marks each letter as bulk, and the sender's display
    name is the newsletter account's sender name, so the extension picks
    that account rather than the everyday one.
    """
    sender = tuple(current_app.config["NEWSLETTER_SENDER"])
    with _mail().connect() as connection:
        for subscriber in subscribers:
            link = url_for("site.unsubscribe", token=unsubscribe_token(subscriber), _external=True)
            greeting = f"Hello {subscriber.name}," if subscriber.name else "Hello,"
            connection.send(
                Message(
                    subject=subject,
                    sender=sender,  # type: ignore[arg-type]
                    recipients=[subscriber.email],
                    body=f"{greeting}\n\n{body}\n\n--\nTo stop receiving this newsletter: {link}\n",
                    extra_headers={
                        "List-Unsubscribe": f"<{link}>",
                        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                    },
                )
            )
    return len(subscribers)


def _reset_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="password-reset")  # type: ignore[arg-type]


def reset_token(user: User) -> str:
    # The hash's tail makes the token void once the password changes.
    return _reset_serializer().dumps([user.id, user.password_hash[-12:]])


def user_of_reset_token(token: str) -> User | None:
    try:
        user_id, tail = _reset_serializer().loads(token, max_age=RESET_MAX_AGE_S)
    except Exception:  # noqa: BLE001 - expired, forged or garbled: not valid
        return None
    user = db.session.get(User, user_id)
    return user if user is not None and user.password_hash[-12:] == tail else None


def send_reset_letter(user: User) -> Message:
    """A system letter from an address no account has: it goes out through ``MAIL_SERVER``."""
    link = url_for("site.reset_password", token=reset_token(user), _external=True)
    message = Message(
        subject="Reset your password",
        sender=current_app.config["NO_REPLY_SENDER"],
        recipients=[user.email],
        body=(
            f"Hello {user.name},\n\nSomeone asked to reset the password of your account at the Example Shop."
            f"\nTo choose a new password, open this link within an hour:\n\n{link}\n\n"
            "If it was not you, ignore this letter.\n"
        ),
    )
    _mail().send(message)
    return message
