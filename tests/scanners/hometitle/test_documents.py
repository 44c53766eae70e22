import pytest

from scanners.hometitle.documents import document_type, names_owner, severity

OWNERS = "Jane Q. Doe; John Doe"


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("WARRANTY DEED", "deed"),
        ("Quitclaim Deed", "quitclaim_deed"),
        ("QUIT CLAIM DEED", "quitclaim_deed"),
        ("DEED OF TRUST", "mortgage"),
        ("MORTGAGE", "mortgage"),
        ("MECHANICS LIEN", "lien"),
        ("RELEASE OF LIEN", "release"),
        ("SATISFACTION OF MORTGAGE", "release"),
        ("EASEMENT", "other"),
        ("quitclaim_deed", "quitclaim_deed"),
    ],
)
def test_county_type_strings_map_to_document_types(raw, kind):
    assert document_type(raw) == kind


@pytest.mark.parametrize(
    ("grantee", "owner"),
    [
        ("DOE, JANE M", True),
        ("John Doe Jr.", True),
        ("Jane Doe & Richard Roe", True),
        ("RICHARD ROE", False),
        ("", False),
    ],
)
def test_grantee_is_matched_against_the_owners(grantee, owner):
    assert names_owner(grantee, OWNERS) is owner


@pytest.mark.parametrize(
    ("kind", "grantee", "expected"),
    [
        ("deed", "Richard Roe", "critical"),
        ("quitclaim_deed", "ACME HOLDINGS LLC", "critical"),
        ("deed", "DOE, JANE", "low"),
        ("lien", "COUNTY TAX COLLECTOR", "high"),
        ("mortgage", "FIRST BANK NA", "high"),
        ("release", "DOE, JANE", "info"),
        ("other", "Anyone", "low"),
    ],
)
def test_title_change_severities(kind, grantee, expected):
    assert severity(kind, grantee, OWNERS) == expected
