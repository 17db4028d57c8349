"""One declaration per setting and per account field, read back by every face that shows or checks it.

A field of :class:`~flask_smtp_accounts.settings.SettingsInfo` or
:class:`~flask_smtp_accounts.account_fields.AccountInfo` is declared with
:func:`spec`: its default (the dataclass's), and in the field's metadata its
range or choices, column length, the admin's label and help, the README's
text and the command line's help. :func:`specs` reads them back, with the
name and the Python type of each field, for the faces made from them: the
columns (``models.py``), the checks (``validation.py``), the admin's form
fields (``admin/forms.py``), the command line's options (``cli.py``) and the
README's tables (:func:`readme_rows`, kept equal to the README by a test).

Labels, help and choice labels are English msgids marked with ``N_``: the
core speaks English; the admin says them in the page's language.
"""

from __future__ import annotations

import dataclasses
import functools
import typing as t

#: The metadata key of a field's declaration.
_KEY = "smtp_accounts"


@dataclasses.dataclass(frozen=True)
class Spec:
    """What one setting or account field is, apart from its name, type and default (the dataclass's)."""

    #: The admin's label and one-line help (msgids).
    label: str
    help: str
    #: The README's "What it does" (English); empty: the field is in no README table.
    doc: str = ""
    #: The command line's help of the field's option; empty: no option.
    cli: str = ""
    #: A whole number's range.
    minimum: int | None = None
    maximum: int | None = None
    #: ``(value, label msgid)`` pairs, in the order a person reads them (the default first).
    choices: tuple[tuple[str, str], ...] = ()
    #: The column's length (``VARCHAR(n)``).
    length: int | None = None
    #: Required: no default stands in for it, and its column has none.
    required: bool = False
    #: The name of a check of its own in ``validation.py`` (an email, a host, the backup ids...).
    check: str | None = None
    #: The settings page's group (msgid); an account field's group of fields that are checked together.
    group: str = ""
    #: The unit the settings page shows after the value (msgid).
    unit: str = ""
    #: What a new account's form starts with, when that is not the field's default.
    form_default: t.Any = None
    #: The admin's form refuses it blank, though the Python API takes its default for it.
    form_required: bool = False
    #: The command line's flag pair of a yes/no field, when not ``--name/--no-name``.
    cli_flags: str = ""
    #: The option's click type when the range is left to the Python API (which names the field and range).
    cli_type: t.Any = None
    cli_metavar: str | None = None


@dataclasses.dataclass(frozen=True)
class Declared:
    """A field's declaration with its name, Python type and default: what the faces are made from."""

    name: str
    type: t.Any
    default: t.Any
    spec: Spec

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self.spec, name)

    @property
    def option(self) -> str:
        """The command line's option: ``--limit-per-day`` for ``limit_per_day``."""
        return "--" + self.name.replace("_", "-")


def spec(default: t.Any, /, label: str, help: str, **declaration: t.Any) -> t.Any:
    """A dataclass field with ``default`` and its declaration (:class:`Spec`) in the metadata.

    Typed ``t.Any`` as :func:`dataclasses.field` is, so that mypy takes the
    annotation of the field it is assigned to.
    """
    return dataclasses.field(default=default, metadata={_KEY: Spec(label=label, help=help, **declaration)})


@functools.cache
def specs(cls: type) -> tuple[Declared, ...]:
    """The declared fields of ``cls``, in its order (fields without a declaration are left out)."""
    hints = t.get_type_hints(cls)
    return tuple(
        Declared(f.name, hints[f.name], f.default, f.metadata[_KEY])
        for f in dataclasses.fields(cls)
        if _KEY in f.metadata
    )


def declared(cls: type, name: str) -> Declared:
    """The declaration of ``cls``'s field ``name``; :class:`KeyError` when it has none."""
    for field in specs(cls):
        if field.name == name:
            return field
    raise KeyError(name)


def readme_rows(fields: t.Iterable[Declared]) -> list[str]:
    """The README table rows of ``fields``: name, default and what it does."""
    return [f"| `{f.name}` | `{f.default!r}` | {f.doc} |" for f in fields if f.doc]
