"""Versioned notification templates (text in Dutch and English; the JSON body is the data).

A template is never edited: a change is a new version, so every stored notification can be
reproduced from its ``template`` reference (reference §1.6). Line 1 is the subject.
"""

from __future__ import annotations

from string import Template
from typing import Any

CURRENT = "cwn-dsn@1"

_TEXT = {
    "cwn-dsn@1": {
        "en": Template(
            "[$ticket] $tlp: $what\n"
            "\n"
            "Dear $recipient,\n"
            "\n"
            "The CWN hub received information that concerns your organisation ($what_long).\n"
            "Case: $case\n"
            "\n"
            "Observations:\n"
            "$lines\n"
            "\n"
            "$handling\n"
            "Please reply with the ticket number: acknowledged, resolved, false positive\n"
            "or not ours.\n"
        ),
        "nl": Template(
            "[$ticket] $tlp: $what\n"
            "\n"
            "Beste $recipient,\n"
            "\n"
            "De CWN-hub ontving informatie die uw organisatie betreft ($what_long).\n"
            "Zaak: $case\n"
            "\n"
            "Waarnemingen:\n"
            "$lines\n"
            "\n"
            "$handling\n"
            "Reageer met het ticketnummer: ontvangen, opgelost, vals positief of niet van ons.\n"
        ),
    }
}

_WHAT = {
    "en": {
        "victim": ("possible compromise", "systems of yours appear to be compromised"),
        "target": (
            "vulnerable or targeted systems",
            "systems of yours appear vulnerable or targeted",
        ),
    },
    "nl": {
        "victim": ("mogelijke compromittering", "systemen van u lijken gecompromitteerd"),
        "target": (
            "kwetsbare of aangevallen systemen",
            "systemen van u lijken kwetsbaar of doelwit",
        ),
    },
}


def render(template: str, data: dict[str, Any]) -> dict[str, str]:
    """The text of ``data`` (a notification's JSON body) in every language of ``template``."""
    out = {}
    for lang, text in _TEXT[template].items():
        what, what_long = _WHAT[lang][data["kind"]]
        lines = "\n".join(
            f"- {o['field']} {o['value']} ({o['type']})" for o in data["observations"]
        )
        out[lang] = text.substitute(
            ticket=data["ticket"],
            tlp=data["tlp_display"],
            what=what,
            what_long=what_long,
            recipient=data["recipient"],
            case=data["case"],
            lines=lines,
            handling=data["handling"],
        )
    return out
