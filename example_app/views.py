"""The shop's pages: home, contact, newsletter, password reset, login, and the demo inbox."""

from __future__ import annotations

import re
import smtplib
import typing as t

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from markupsafe import Markup, escape
from wtforms import StringField

from flask_smtp_accounts import SMTPAccountsError

from .forms import (
    ConfirmForm,
    ContactForm,
    LoginForm,
    NewPasswordForm,
    NewsletterForm,
    ResetRequestForm,
    SubscribeForm,
)
from .letters import (
    send_contact_letter,
    send_newsletter,
    send_reset_letter,
    subscriber_email,
    user_of_reset_token,
)
from .models import Subscriber, User, db

site = Blueprint("site", __name__)

#: What a failed send can raise: the extension's errors, or Flask-Mail's own (smtplib) ones.
SEND_ERRORS = (SMTPAccountsError, smtplib.SMTPException, OSError)


def _given(field: StringField) -> str:
    """The text of a field that ``InputRequired`` has checked (WTForms types every field's data as optional)."""
    return field.data or ""


def _sent_or_flash(send: t.Callable[[], t.Any], done: str) -> bool:
    try:
        send()
    except SEND_ERRORS as err:
        flash(f"The letter could not be sent: {err}", "error")
        return False
    flash(done, "ok")
    return True


@site.route("/")
def index() -> str:
    return render_template("index.html", form=SubscribeForm())


@site.route("/subscribe", methods=["POST"])
def subscribe() -> t.Any:
    form = SubscribeForm()
    if form.validate_on_submit():
        email = _given(form.email).strip()
        if db.session.scalar(db.select(Subscriber).filter_by(email=email)) is None:
            db.session.add(Subscriber(email=email))
            db.session.commit()
        flash(f"{email} is on the newsletter list.", "ok")
    else:
        flash("Please give a valid email address.", "error")
    return redirect(url_for("site.index"))


@site.route("/contact", methods=["GET", "POST"])
def contact() -> t.Any:
    form = ContactForm()
    if form.validate_on_submit():
        sent = _sent_or_flash(
            lambda: send_contact_letter(_given(form.name), _given(form.email), _given(form.message)),
            "Thank you, your message was sent to the shop.",
        )
        if sent:
            return redirect(url_for("site.inbox"))
    return render_template("contact.html", form=form)


@site.route("/newsletter", methods=["GET", "POST"])
@login_required
def newsletter() -> t.Any:
    form = NewsletterForm()
    subscribers = db.session.scalars(db.select(Subscriber).order_by(Subscriber.id)).all()
    if form.validate_on_submit():
        if not subscribers:
            flash("Nobody is subscribed yet.", "error")
        elif _sent_or_flash(
            lambda: send_newsletter(_given(form.subject), _given(form.body), subscribers),
            f"The newsletter went to {len(subscribers)} subscriber(s).",
        ):
            return redirect(url_for("site.inbox"))
    return render_template("newsletter.html", form=form, subscribers=subscribers)


@site.route("/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> t.Any:
    email = subscriber_email(token)
    if email is None:
        abort(404)
    form = ConfirmForm()
    # RFC 8058 one-click unsubscribe posts without a CSRF token; a valid signed token is proof enough.
    one_click = request.method == "POST" and request.form.get("List-Unsubscribe") == "One-Click"
    if one_click or form.validate_on_submit():
        subscriber = db.session.scalar(db.select(Subscriber).filter_by(email=email))
        if subscriber is not None:
            db.session.delete(subscriber)
            db.session.commit()
        return render_template("unsubscribe.html", email=email, done=True, form=form)
    return render_template("unsubscribe.html", email=email, done=False, form=form)


@site.route("/reset", methods=["GET", "POST"])
def reset_request() -> t.Any:
    form = ResetRequestForm()
    if form.validate_on_submit():
        user = db.session.scalar(db.select(User).filter_by(email=_given(form.email).strip()))
        # The same answer whether or not the account exists, as a real site should give.
        done = "If that address has an account, a letter with a reset link is on its way."
        if user is None:
            flash(done, "ok")
            return redirect(url_for("site.inbox"))
        if _sent_or_flash(lambda: send_reset_letter(user), done):
            return redirect(url_for("site.inbox"))
    sender = current_app.config["NO_REPLY_SENDER"]
    route = current_app.extensions["smtp_accounts"].ext.choose_account(sender)
    return render_template("reset.html", form=form, sender=sender[1], route=route)


@site.route("/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> t.Any:
    user = user_of_reset_token(token)
    if user is None:
        flash("This reset link is no longer valid.", "error")
        return redirect(url_for("site.reset_request"))
    form = NewPasswordForm()
    if form.validate_on_submit():
        user.set_password(_given(form.password))
        db.session.commit()
        flash("Your password was changed; log in with it.", "ok")
        return redirect(url_for("site.login"))
    return render_template("reset_password.html", form=form, user=user)


@site.route("/login", methods=["GET", "POST"])
def login() -> t.Any:
    form = LoginForm()
    if form.validate_on_submit():
        user = db.session.scalar(db.select(User).filter_by(email=_given(form.email).strip()))
        if user is not None and user.check_password(form.password.data):
            login_user(user)
            target = request.args.get("next", "")
            return redirect(
                target if target.startswith("/") and not target.startswith("//") else url_for("site.index")
            )
        flash("Wrong email or password.", "error")
    return render_template("login.html", form=form)


@site.route("/logout", methods=["POST"])
def logout() -> t.Any:
    if ConfirmForm().validate_on_submit():
        logout_user()
    return redirect(url_for("site.index"))


@site.route("/inbox")
def inbox() -> str:
    """What the local demo servers received, and which account carried each letter."""
    demo_inbox = current_app.extensions.get("demo_inbox")
    show_credentials = current_user.is_authenticated and current_user.is_admin
    return render_template("inbox.html", inbox=demo_inbox, show_credentials=show_credentials)


@site.app_context_processor
def logout_form() -> dict[str, t.Any]:
    return {"logout_form": ConfirmForm()}


_URL = re.compile(r"https?://[^\s<>&]+")


@site.app_template_filter("autolink")
def autolink(text: str) -> Markup:
    """Escape a letter's text and make its links clickable, so a visitor can follow a reset link."""
    return Markup(_URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', str(escape(text))))
