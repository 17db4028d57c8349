# Type stubs for the part of flask-babel 4 that this project uses: the package ships no py.typed and
# leaves its translation functions unannotated, so without these every translated string is Any.
# Names not declared here stay Any (the module-level __getattr__), as a partial stub allows.

import datetime as _dt
import typing as t
from decimal import Decimal

from _typeshed import Incomplete
from flask import Flask

from .speaklater import LazyString as LazyString

_Number = int | float | Decimal

class Babel:
    def __init__(
        self,
        app: Flask | None = None,
        date_formats: dict[str, str | None] | None = None,
        configure_jinja: bool = True,
        *args: t.Any,
        **kwargs: t.Any,
    ) -> None: ...
    def init_app(self, app: Flask, *args: t.Any, **kwargs: t.Any) -> None: ...

class Domain:
    domain: list[str]
    def __init__(
        self, translation_directories: str | list[str] | None = None, domain: str = "messages"
    ) -> None: ...
    def gettext(self, string: str, **variables: t.Any) -> str: ...
    def ngettext(self, singular: str, plural: str, num: int, **variables: t.Any) -> str: ...
    def lazy_gettext(self, string: str, **variables: t.Any) -> LazyString: ...

def gettext(string: str, **variables: t.Any) -> str: ...
def ngettext(singular: str, plural: str, num: int, **variables: t.Any) -> str: ...
def lazy_gettext(string: str, **variables: t.Any) -> LazyString: ...
def format_datetime(
    datetime: _dt.datetime | None = None, format: str | None = None, rebase: bool = True
) -> str: ...
def format_date(date: _dt.date | None = None, format: str | None = None, rebase: bool = True) -> str: ...
def format_time(
    time: _dt.time | _dt.datetime | None = None, format: str | None = None, rebase: bool = True
) -> str: ...
def format_timedelta(
    datetime_or_timedelta: _dt.datetime | _dt.timedelta,
    granularity: str = "second",
    add_direction: bool = False,
    threshold: float = 0.85,
) -> str: ...
def format_number(number: _Number) -> str: ...
def format_decimal(number: _Number, format: str | None = None) -> str: ...
def __getattr__(name: str) -> Incomplete: ...
