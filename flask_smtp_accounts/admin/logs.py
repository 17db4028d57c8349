"""The sending logs pages: list, view a page of a log, download, delete.

A log is addressed in the URL by an account id and a kind, and passed to
the logs API as exactly that; the API refuses anything else, so no URL
can reach another file. A page shows at most :data:`PAGE_BYTES` of a log,
the newest part first; the download streams the file from disk.
"""

from __future__ import annotations

from flask import abort, flash, redirect, request, send_file
from flask.typing import ResponseReturnValue
from flask_admin import BaseView, expose
from flask_babel import format_datetime, format_decimal

from ..errors import LogAddressError, LogNotFoundError
from ..ids import parse_id
from ..labels import route_label
from ..log_files import LogInfo, log_filename
from .access import MANAGE_ACCOUNTS, VIEW_LOGS, ProtectedView, allowed, extension, state
from .forms import LogDeleteForm
from .i18n import _, _l, say

#: How much of a log one page shows.
PAGE_BYTES = 64 * 1024
#: Logs listed on one page of the list (a site may have thousands of accounts).
LOGS_PER_PAGE = 50
KIND_WORDS = {"send": _l("sending"), "check": _l("checks")}


def size_text(size: int) -> str:
    """A file size for people: ``512 B``, ``12.5 KB``, ``3.2 MB``."""
    if size < 1024:
        return _("%(size)s B", size=format_decimal(size))
    if size < 1024 * 1024:
        return _("%(size)s KB", size=format_decimal(round(size / 1024, 1)))
    return _("%(size)s MB", size=format_decimal(round(size / 1024 / 1024, 1)))


def mailbox_text(account_id: int, kind: str) -> str:
    """``Name <email> (sending)``; ``New account (checks)`` for id 0 (the checks of an account not saved yet)."""
    labels = {a.id: a.label for a in extension().list_accounts((account_id,))} if account_id else {}
    return _mailbox(account_id, route_label(account_id, labels), kind)


def _page_arg() -> int:
    page = parse_id(request.args.get("page") or "1")
    if not page:
        abort(404)
    return page


def _listed_mailbox(log: LogInfo) -> str:
    """``mailbox_text`` for a listed log, from the label the list looked up with the others."""
    return _mailbox(log.account_id, log.label, log.kind)


def _mailbox(account_id: int, label: str, kind: str) -> str:
    """A deleted account's label (a core sentence) in the page's language; an account's own is data."""
    name = _("New account") if account_id == 0 else say(label)
    return f"{name} ({KIND_WORDS[kind]})"


def _offset_arg() -> int | None:
    raw = request.args.get("offset")
    if raw is None:
        return None
    offset = parse_id(raw)
    if offset is None:
        abort(404)
    return offset


class LogsView(ProtectedView, BaseView):
    """Mail sending logs: who may see them needs ``view_logs``; deleting also needs ``manage_accounts``."""

    permission = VIEW_LOGS
    list_template = "smtp_accounts/logs.html"
    view_template = "smtp_accounts/log_view.html"

    @expose("/")
    def index(self) -> ResponseReturnValue:
        page = _page_arg()
        listed = extension().list_logs(start=(page - 1) * LOGS_PER_PAGE, count=LOGS_PER_PAGE + 1)
        logs = [
            {
                "info": log,
                "mailbox": _listed_mailbox(log),
                "size": size_text(log.size),
                "modified": format_datetime(log.modified),
            }
            for log in listed[:LOGS_PER_PAGE]
        ]
        return self.render(
            self.list_template,
            logs=logs,
            delete_form=LogDeleteForm(),
            may_delete=allowed(MANAGE_ACCOUNTS),
            page=page,
            has_next=len(listed) > LOGS_PER_PAGE,
        )

    @expose("/<smtp_accounts_id:account_id>/<kind>/")
    def view(self, account_id: int, kind: str) -> ResponseReturnValue:
        """One page of a log: the newest part unless ``offset`` asks for another."""
        offset = _offset_arg()
        ext = extension()
        try:
            chunk = ext.read_log(account_id, kind, -PAGE_BYTES if offset is None else offset, PAGE_BYTES)
        except LogAddressError:
            abort(404)
        except LogNotFoundError:
            flash(_("This log does not exist (any more)."), "error")
            return redirect(self.get_url(".index"))
        pages = {
            "oldest": 0 if chunk.offset > 0 else None,
            "older": max(chunk.offset - PAGE_BYTES, 0) if chunk.offset > 0 else None,
            "newer": chunk.end if chunk.end < chunk.size else None,
            "newest": max(chunk.size - PAGE_BYTES, 0) if chunk.end < chunk.size else None,
        }
        return self.render(
            self.view_template,
            chunk=chunk,
            pages=pages,
            mailbox=mailbox_text(account_id, kind),
            filename=log_filename(account_id, kind),
            size=size_text(chunk.size),
            delete_form=LogDeleteForm(),
            may_delete=allowed(MANAGE_ACCOUNTS),
        )

    @expose("/<smtp_accounts_id:account_id>/<kind>/download")
    def download(self, account_id: int, kind: str) -> ResponseReturnValue:
        """The whole log as a file, streamed from disk (never read whole into memory)."""
        try:
            path = state().smtp_logs.files.path(account_id, kind)
            return send_file(
                path, mimetype="text/plain", as_attachment=True, download_name=log_filename(account_id, kind)
            )
        except LogAddressError:
            abort(404)
        except FileNotFoundError:
            abort(404)

    @expose("/<smtp_accounts_id:account_id>/<kind>/delete", methods=("POST",))
    def delete(self, account_id: int, kind: str) -> ResponseReturnValue:
        if not allowed(MANAGE_ACCOUNTS):
            return self.refuse(MANAGE_ACCOUNTS)
        form = LogDeleteForm()
        if not form.validate_on_submit():
            flash(
                _("The request was refused: the form lacked its security token. Nothing was deleted."),
                "error",
            )
            return redirect(self.get_url(".index"))
        try:
            deleted = extension().delete_log(account_id, kind)
        except LogAddressError:
            abort(404)
        if deleted:
            flash(_("The log %(file)s was deleted.", file=log_filename(account_id, kind)), "success")
        else:
            flash(_("This log does not exist (any more)."), "error")
        return redirect(self.get_url(".index"))
