"""Who sees which source, the source tree, and the login page."""

from __future__ import annotations

import pytest
from django.test import Client

from autorespond.selectors import sources_visible_to
from autorespond.services import source_upsert
from tests.factories import MembershipFactory, SourceFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_business():  # type: ignore[no-untyped-def]
    business = SourceFactory(slug="acme-hvac", name="Acme HVAC")
    SourceFactory(slug="acme-hvac-north", name="Acme HVAC North", parent=business)
    return business


def test_owner_sees_own_business_and_every_level_below(owner, business, location, other_business):
    deep = SourceFactory(slug="joes-east-van", name="East van", parent=location)
    visible = set(sources_visible_to(user=owner).values_list("slug", flat=True))
    assert visible == {business.slug, location.slug, deep.slug}


def test_staff_see_everything(staff, business, other_business):
    assert sources_visible_to(user=staff).count() == 3


def test_home_lists_only_own_sources(owner_client, business, location, other_business):
    page = owner_client.get("/").content.decode()
    assert "Joe&#x27;s Plumbing East" in page
    assert "Acme" not in page


def test_owner_gets_404_for_another_business_card(owner_client, other_business):
    url = f"/sources/{other_business.slug}/integrations/salesforce/"
    assert owner_client.get(url).status_code == 404
    assert owner_client.get("/sources/no-such-source/integrations/salesforce/").status_code == 404


def test_owner_and_staff_open_the_card(owner_client, staff_client, location):
    url = f"/sources/{location.slug}/integrations/salesforce/"
    assert owner_client.get(url).status_code == 200
    assert staff_client.get(url).status_code == 200


def test_anonymous_is_sent_to_login(client, location):
    response = client.get(f"/sources/{location.slug}/integrations/salesforce/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_login_page_logs_an_owner_in(business):
    user = UserFactory(username="mia")
    MembershipFactory(user=user, business=business)
    client = Client()
    assert "Log in" in client.get("/accounts/login/").content.decode()
    response = client.post(
        "/accounts/login/", {"username": "mia", "password": "correct horse battery"}
    )
    assert response.status_code == 302
    assert "Joe&#x27;s Plumbing" in client.get("/").content.decode()
    wrong = client.post("/accounts/login/", {"username": "mia", "password": "nope"})
    assert "Please enter a correct username and password" in wrong.content.decode()


def test_a_deeper_tree_cannot_loop(business, location):
    deep, _ = source_upsert(slug="deep", name="Deep", parent_slug=location.slug)
    with pytest.raises(Exception, match="own ancestor"):
        source_upsert(slug=business.slug, name="x", parent_slug=deep.slug)
    with pytest.raises(Exception, match="own ancestor"):
        source_upsert(slug=location.slug, name="x", parent_slug=location.slug)
