"""The API's base: where each method finds the current app's state and the models."""

from __future__ import annotations

import typing as t

from flask import current_app, has_app_context

from ..models import AccountRow, Models, SettingsRow, make_models
from ..state import AppState

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy


class APIBase:
    """What every part of the API reads: the current app's state, and the models."""

    db: SQLAlchemy | None
    _models: Models | None
    _access_rule: t.Callable[[str], bool] | None

    @property
    def _state(self) -> AppState:
        try:
            return t.cast(AppState, current_app.extensions["smtp_accounts"])
        except KeyError:
            raise RuntimeError(
                "SMTPAccounts is not initialised on the current app: call init_app(app) first."
            ) from None

    # --- models -------------------------------------------------------------

    def _models_or_fail(self) -> Models:
        state = current_app.extensions.get("smtp_accounts") if has_app_context() else None
        if state is not None and state.ext is self:
            return t.cast(Models, state.models)
        if self._models is None:
            if self.db is None:
                raise RuntimeError("The models need a db: SMTPAccounts(db=db) or init_app(app, db=db).")
            self._models = make_models(self.db)
        return self._models

    @property
    def Account(self) -> type[AccountRow]:  # noqa: N802 - a model class
        """The account model (table ``smtp_accounts_account``)."""
        return self._models_or_fail().Account

    @property
    def Settings(self) -> type[SettingsRow]:  # noqa: N802 - a model class
        """The settings model (one row, table ``smtp_accounts_settings``)."""
        return self._models_or_fail().Settings
