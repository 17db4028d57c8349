"""The provider presets in the account form: the choice, the data its script reads, the note it shows.

The presets themselves are declared once in ``presets.py``; this module
only puts them into the form's terms. The script (template
``smtp_accounts/_presets.html``) fills host, port, security and
authorization from :func:`preset_data` and shows the chosen preset's
note; it also moves the port with the security unless the port was typed
by hand. It is inline and small, so the admin works without a network.
"""

from __future__ import annotations

import typing as t

from ..presets import PRESETS, SECURITY_PORTS
from ..validation import LIMITS
from .i18n import _l, gettext


def preset_choices() -> list[tuple[str, t.Any]]:
    """The form's choices: none, then every preset by the provider's name."""
    return [("", _l("None: type the server's data yourself")), *((p.key, p.name) for p in PRESETS)]


def preset_data() -> dict[str, t.Any]:
    """What the form's script needs, as JSON: each preset's fields and regions, and the usual ports."""
    return {
        "ports": SECURITY_PORTS,
        "presets": {
            p.key: {
                "host": p.host,
                "regions": list(p.regions),
                "port": p.port,
                "security": p.security,
                "auth": p.auth,
                "login": p.login,
                "login_hint": gettext(p.login_hint),
                "oauth_provider": p.oauth_provider,
                "caps": {name: 0 for name in LIMITS} | dict(p.caps) if p.caps else {},
            }
            for p in PRESETS
        },
    }
