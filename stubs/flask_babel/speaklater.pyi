# A lazy translation, translated each time it is used (see flask_babel/__init__.pyi). At run time it
# is no str subclass but stands in for one wherever text is taken (WTForms labels, flask-admin's
# texts, Jinja), which is all this project does with it; so the stub types it as a str.

import typing as t

class LazyString(str):
    def __init__(self, func: t.Callable[..., str], *args: t.Any, **kwargs: t.Any) -> None: ...
    def __html__(self) -> str: ...
