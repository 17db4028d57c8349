"""The shop's own forms (Flask-WTF, so every POST carries a CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField, TextAreaField
from wtforms.validators import Email, InputRequired, Length


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired()])
    password = PasswordField("Password", validators=[InputRequired()])


class ContactForm(FlaskForm):
    name = StringField("Your name", validators=[InputRequired(), Length(max=100)])
    email = EmailField("Your email", validators=[InputRequired(), Email(check_deliverability=False)])
    message = TextAreaField("Message", validators=[InputRequired(), Length(max=5000)])


class NewsletterForm(FlaskForm):
    subject = StringField("Subject", validators=[InputRequired(), Length(max=200)])
    body = TextAreaField("Text", validators=[InputRequired(), Length(max=20000)])


class SubscribeForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired(), Email(check_deliverability=False)])


class ResetRequestForm(FlaskForm):
    email = EmailField("Your account's email", validators=[InputRequired()])


class NewPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[InputRequired(), Length(min=8)])


class ConfirmForm(FlaskForm):
    """A form with nothing but its CSRF token, for one-button actions."""
