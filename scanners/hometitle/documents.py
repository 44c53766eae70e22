"""Reading recorder data: what kind of document a county's type string names, who is named on it,
and how much a new document matters to the owner of the property."""

from __future__ import annotations

import re

from scanners.findings import Severity
from scanners.hometitle.models import DocumentType

# Checked in order: "QUITCLAIM DEED" is a quitclaim, "RELEASE OF LIEN" a release, "DEED OF TRUST" a mortgage.
_TYPE_WORDS = (
    ("QUITCLAIM", DocumentType.QUITCLAIM),
    ("QUIT CLAIM", DocumentType.QUITCLAIM),
    ("RELEASE", DocumentType.RELEASE),
    ("SATISFACTION", DocumentType.RELEASE),
    ("RECONVEYANCE", DocumentType.RELEASE),
    ("DEED OF TRUST", DocumentType.MORTGAGE),
    ("MORTGAGE", DocumentType.MORTGAGE),
    ("DEED", DocumentType.DEED),
    ("LIEN", DocumentType.LIEN),
    ("JUDGMENT", DocumentType.LIEN),
)
_NAME_SEPARATORS = re.compile(r";|&|/|\band\b", re.IGNORECASE)
_NOT_A_NAME_PART = frozenset({"jr", "sr", "ii", "iii", "iv", "mr", "mrs", "ms", "dr", "et", "al", "ux", "vir"})


def document_type(raw: str) -> str:
    """Our DocumentType for a county's own type string ("WARRANTY DEED" → deed)."""
    if raw.strip().lower() in DocumentType.values:
        return raw.strip().lower()
    upper = raw.upper().replace("_", " ")
    return next((kind for word, kind in _TYPE_WORDS if word in upper), DocumentType.OTHER)


def _name_tokens(text: str) -> list[frozenset[str]]:
    names = []
    for part in _NAME_SEPARATORS.split(text):
        tokens = {token for token in re.findall(r"[a-z]+", part.casefold()) if len(token) > 1} - _NOT_A_NAME_PART
        if tokens:
            names.append(frozenset(tokens))
    return names


def names_owner(grantee: str, owner_names: str) -> bool:
    """True if the grantee is one of the owners ("DOE, JANE M" is "Jane Doe"); initials and suffixes ignored."""
    owners = _name_tokens(owner_names)
    return any(g <= o or o <= g for g in _name_tokens(grantee) for o in owners)


def severity(kind: str, grantee: str, owner_names: str) -> str:
    """A deed away from the owners is critical; new debt against the property high; a release informational."""
    if kind in (DocumentType.DEED, DocumentType.QUITCLAIM):
        return Severity.LOW if names_owner(grantee, owner_names) else Severity.CRITICAL
    if kind in (DocumentType.MORTGAGE, DocumentType.LIEN):
        return Severity.HIGH
    if kind == DocumentType.RELEASE:
        return Severity.INFO
    return Severity.LOW
