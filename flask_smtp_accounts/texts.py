"""Sentences the core says in English that the admin pages say in the page's language.

The core (hints, OAuth2 errors, check and sign-in failures) runs without a
request, so it cannot know the reader's language; it returns English for
logs, exceptions and the command line. A :class:`Text` is that English
string and also remembers how it was made, so that the admin renders it
through the extension's catalogue (``admin/i18n.py``, :func:`say`) instead.
Wrapping each English template in :func:`N_` lets ``pybabel extract`` find
it (see ``babel.cfg``).
"""

from __future__ import annotations

import typing as t


def N_(msgid: str) -> str:  # noqa: N802 - gettext's conventional name for "mark, don't translate"
    """Mark ``msgid`` for the catalogue; it is translated later, where the reader is known."""
    return msgid


class Text(str):
    """An English sentence that remembers its catalogue ``msgid`` and ``params``.

    ``Text("ssl-on-plain-port", N_("Port %(port)s answers..."), port=587)``
    equals ``"Port 587 answers..."`` and is used as that string everywhere.
    ``key`` names the sentence for code and tests (it does not change when
    the wording does); ``params`` are data (ports, host names, a server's
    or the OS's own words) and are never translated, unless one is itself a
    :class:`Text`.
    """

    key: str
    msgid: str
    params: dict[str, t.Any]

    def __new__(cls, key: str, msgid: str, /, **params: t.Any) -> Text:
        # As gettext does: without parameters the template is the text, a "%" in it stays as it is.
        self = super().__new__(cls, msgid % params if params else msgid)
        self.key = key
        self.msgid = msgid
        self.params = params
        return self

    def __reduce__(self) -> tuple[t.Any, ...]:
        return _rebuild, (self.key, self.msgid, self.params)


def _rebuild(key: str, msgid: str, params: dict[str, t.Any]) -> Text:
    return Text(key, msgid, **params)
