"""The maintained vocabulary of knowledge products, a MISP taxonomy (``taxonomy.json`` in
this package): every product's kind and themes go out as its machine tags
(``cwn-knowledge:theme="ot"``), so MISP, TAXII and REST recipients filter on one spelling.
A change of vocabulary is a change of that file (and its ``version``), reviewed like code."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from hub.intel.service import KNOWLEDGE_TAG

NAMESPACE = "cwn-knowledge"
PRODUCT_TAG = KNOWLEDGE_TAG


@cache
def taxonomy() -> dict[str, Any]:
    """The taxonomy document as shipped (MISP's machinetag.json shape)."""
    text = resources.files(__package__).joinpath("taxonomy.json").read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def values(predicate: str) -> dict[str, str]:
    """The values of one predicate, each with its expansion, in the file's order."""
    for group in taxonomy()["values"]:
        if group["predicate"] == predicate:
            return {e["value"]: e["expanded"] for e in group["entry"]}
    return {}


def kinds() -> dict[str, str]:
    return values("kind")


def themes() -> dict[str, str]:
    return values("theme")


def tag(predicate: str, value: str) -> str:
    """The machine tag of a value: ``cwn-knowledge:theme="ot"``."""
    return f'{NAMESPACE}:{predicate}="{value}"'
