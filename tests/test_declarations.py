"""Each setting and account field is declared once; its column, check, form field, option and README row follow.

The faces are walked field by field: a declaration added to ``settings.py``
or ``account_fields.py`` that one of them missed fails here, and so does a
README table that says something else than the declarations.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing as t
from pathlib import Path

import click
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flask_smtp_accounts import InvalidAccountError, InvalidSettingError
from flask_smtp_accounts.account_fields import ACCOUNT_SPECS, LIMIT_FIELDS, OAUTH2, AccountInfo
from flask_smtp_accounts.cli import smtp_accounts_cli
from flask_smtp_accounts.cli.accounts import _field_option
from flask_smtp_accounts.declarations import Declared, readme_rows, spec, specs
from flask_smtp_accounts.models import AccountColumns, Models, SettingsColumns, declared_columns, make_models
from flask_smtp_accounts.settings import SETTINGS, SettingsInfo
from flask_smtp_accounts.validation import check_field, validate_settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
GOOD = {"sender_email": "a@example.com", "host": "smtp.example.com", "auth": "none"}


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.M | re.S)
    assert match, title
    return match.group(1)


def _table(text: str) -> list[str]:
    """The rows of a README table whose first cell is code."""
    return re.findall(r"^\| `.*$", text, re.M)


def _expected_type(field: Declared) -> type[sa.types.TypeEngine[t.Any]]:
    return {bool: sa.Boolean, int: sa.Integer, str: sa.String}.get(field.type, sa.types.TypeDecorator)


def _check_column(table: sa.Table, field: Declared) -> None:
    column = table.c[field.name]
    assert isinstance(column.type, _expected_type(field)), field.name
    assert column.nullable is False, field.name
    if field.type is str:
        assert isinstance(column.type, sa.String) and column.type.length == field.length, field.name
    if field.required:
        assert column.default is None, field.name
    else:
        assert isinstance(column.default, sa.ColumnDefault) and column.default.arg == field.default, (
            field.name
        )


def test_every_setting_has_its_column_check_form_field_and_readme_row(admin_site: t.Any) -> None:
    from flask_smtp_accounts.admin.forms import SettingsForm

    table = admin_site.ext.Settings.__table__
    for setting in SETTINGS:
        _check_column(table, setting)
        assert validate_settings({setting.name: setting.default}) == {setting.name: setting.default}
        if setting.maximum is not None:
            with pytest.raises(InvalidSettingError) as refused:
                validate_settings({setting.name: setting.maximum + 1})
            assert refused.value.field == setting.name
        with admin_site.app.test_request_context():
            assert str(getattr(SettingsForm, setting.name).args[0]) == setting.label
    assert _table(_section("Settings")) == readme_rows(SETTINGS)


def test_every_account_field_has_its_column_check_form_field_option_and_readme_row(admin_site: t.Any) -> None:
    from flask_smtp_accounts.admin.forms import AccountForm

    table = admin_site.ext.Account.__table__
    options = {param.name: param for param in smtp_accounts_cli.commands["add"].params}
    checked = {"id": 0, **GOOD, "has_password": False}
    for field in ACCOUNT_SPECS:
        _check_column(table, field)
        if field.group != OAUTH2:  # the OAuth2 fields are checked together, with OAuth2 only
            assert check_field(field, checked.get(field.name), InvalidAccountError, checked) == checked.get(
                field.name, field.default
            )
        with admin_site.app.test_request_context():
            assert str(getattr(AccountForm, field.name).args[0]) == field.label, field.name
        assert options[field.name].help == field.cli, field.name
    limits = [field for field in ACCOUNT_SPECS if field.name in LIMIT_FIELDS]
    assert _table(_section("Sending limits")) == readme_rows(limits)


@pytest.mark.one_database
def test_every_faces_field_is_declared() -> None:
    """Nothing reaches a face around the declarations: no column, form field or option of an undeclared field."""
    from flask_smtp_accounts.admin.forms import ACCOUNT_FORM_FIELDS, SETTINGS_META

    declared = {field.name for field in ACCOUNT_SPECS}
    assert set(SETTINGS_META) == {setting.name for setting in SETTINGS}
    assert set(ACCOUNT_FORM_FIELDS) - declared == {"oauth_client_secret", "oauth_refresh_token"}
    fields_of_add = {param.name for param in smtp_accounts_cli.commands["add"].params}
    assert declared <= fields_of_add


# --- one new declaration yields every face ------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Extended:
    """A declaration the package does not have, as a newcomer would add it."""

    greeting_delay_s: int = spec(
        3,
        "Greeting delay",
        "Seconds to wait for a slow greeting.",
        doc="Seconds to wait for the server's greeting.",
        cli="Seconds to wait for the greeting.",
        minimum=0,
        maximum=60,
    )


def test_one_new_declaration_yields_column_check_form_field_option_and_readme_row(admin_site: t.Any) -> None:
    from flask_smtp_accounts.admin.forms import _account_field

    (field,) = specs(_Extended)
    assert (field.name, field.type, field.default) == ("greeting_delay_s", int, 3)

    class Base(DeclarativeBase):
        pass

    class Extended(declared_columns(_Extended), Base):  # type: ignore[misc]
        __tablename__ = "extended"
        id: Mapped[int] = mapped_column(primary_key=True)

    _check_column(t.cast(sa.Table, Extended.__table__), field)

    assert check_field(field, "7", InvalidAccountError, {}) == 7
    assert check_field(field, None, InvalidAccountError, {}) == 3
    with pytest.raises(
        InvalidAccountError, match="greeting_delay_s: must be a whole number from 0 to 60, not 61"
    ):
        check_field(field, 61, InvalidAccountError, {})

    form_field = _account_field(field)
    with admin_site.app.test_request_context():
        assert str(form_field.args[0]) == "Greeting delay" and form_field.kwargs["default"] == 3

    @click.command()
    @_field_option(field, for_edit=False)
    def command(greeting_delay_s: int | None) -> None:
        click.echo(repr(greeting_delay_s))

    (option,) = command.params
    assert option.opts == ["--greeting-delay-s"] and option.help == "Seconds to wait for the greeting."
    assert click.testing.CliRunner().invoke(command, ["--greeting-delay-s", "61"]).exit_code == 2

    assert readme_rows([field]) == [
        "| `greeting_delay_s` | `3` | Seconds to wait for the server's greeting. |"
    ]


# --- what the declaration adds: the yes/no fields of an account are checked like the settings' ----------


def test_an_accounts_yes_no_field_is_refused_by_name_and_parsed_strictly(ext: t.Any) -> None:
    with pytest.raises(InvalidAccountError) as refused:
        ext.add_account(check=False, active="maybe", **GOOD)
    assert refused.value.field == "active"
    assert str(refused.value) == "active: must be true or false, not 'maybe'"

    account = ext.add_account(check=False, verify_tls="False", **GOOD)
    assert ext.list_accounts()[0].verify_tls is False and account.verify_tls is False


# --- the typed models -----------------------------------------------------------------------------


@pytest.mark.one_database
@pytest.mark.parametrize(
    ("mixin", "declared"), [(AccountColumns, AccountInfo), (SettingsColumns, SettingsInfo)]
)
def test_the_typed_columns_are_the_declarations(mixin: type, declared: type) -> None:
    """What mypy is told about a model's columns (``Account.sender_email: Mapped[str]``) is what is declared."""
    mapped: t.Any = Mapped  # subscripted with a value here, which a type checker reads as a type expression
    expected = {field.name: mapped[field.type] for field in specs(declared)}
    assert t.get_type_hints(mixin) == expected


# The models on an in-memory SQLite engine of its own; no table is created.
@pytest.mark.one_database
@pytest.mark.parametrize("name", [field.name for field in dataclasses.fields(Models)])
def test_each_model_is_typed_as_its_table(name: str) -> None:
    """What mypy is told of a model (``Models.Message: type[MessageColumns]``) is its table's columns.

    A column per ``Mapped`` annotation of the mixin, of the annotated Python
    type, and NULL allowed exactly where the annotation allows None.
    """
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    model = getattr(make_models(SQLAlchemy(app)), name)
    (mixin,) = t.get_args(t.get_type_hints(Models)[name])
    assert issubclass(model, mixin)
    hints = {
        n: t.get_args(hint)[0] for n, hint in t.get_type_hints(mixin).items() if t.get_origin(hint) is Mapped
    }
    columns = model.__table__.c
    assert sorted(hints) == sorted(columns.keys())
    for column in columns:
        hint = hints[column.name]
        allowed = set(t.get_args(hint)) if isinstance(hint, types.UnionType) else {hint}
        assert (type(None) in allowed) == column.nullable, column.name
        assert column.type.python_type in {t.get_origin(a) or a for a in allowed}, column.name


def test_models_of_two_dbs_each_get_the_declared_columns(site: t.Any) -> None:
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    from flask_smtp_accounts.models import make_models

    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    other = SQLAlchemy(app)
    theirs = make_models(other).Account.__table__
    ours = site.ext.Account.__table__
    assert theirs is not ours and theirs.c.port is not ours.c.port
    assert [(c.name, str(c.type), c.nullable) for c in theirs.c] == [
        (c.name, str(c.type), c.nullable) for c in ours.c
    ]


@pytest.mark.one_database
def test_the_oauth2_packages_choices_are_the_declared_ones() -> None:
    """``oauth2.PROVIDER_CHOICES`` and ``FLOW_CHOICES`` (public) name the values the declarations allow."""
    from flask_smtp_accounts.account_fields import CHOICES
    from flask_smtp_accounts.oauth2 import FLOW_CHOICES, PROVIDER_CHOICES

    assert set(CHOICES["oauth_provider"]) == set(PROVIDER_CHOICES)
    assert set(CHOICES["oauth_flow"]) == set(FLOW_CHOICES)
