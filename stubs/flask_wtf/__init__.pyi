# Type stubs for flask-wtf's FlaskForm: the package ships no py.typed and leaves FlaskForm unannotated,
# so without this stub every form class of the admin would subclass Any. WTForms' own types come from
# types-WTForms (the dev extra). Names not declared here stay Any, as a partial stub allows.

import typing as t

from _typeshed import Incomplete
from markupsafe import Markup
from wtforms import Form

class FlaskForm(Form):
    def __init__(self, formdata: t.Any = ..., **kwargs: t.Any) -> None: ...
    def is_submitted(self) -> bool: ...
    def validate_on_submit(
        self, extra_validators: t.Mapping[str, t.Sequence[t.Any]] | None = None
    ) -> bool: ...
    def hidden_tag(self, *fields: t.Any) -> Markup: ...

def __getattr__(name: str) -> Incomplete: ...
