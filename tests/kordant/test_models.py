import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from kordant.models import Subscription


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("ada", "ada@example.com", "pw")


def test_invalid_timezone_is_a_field_error(user):
    subscription = Subscription(user=user, tier="premium", timezone="Mars/Olympus_Mons")
    with pytest.raises(ValidationError) as error:
        subscription.full_clean()
    assert "timezone" in error.value.message_dict


def test_invalid_timezone_is_refused_on_save_too(user):
    with pytest.raises(ValidationError):
        Subscription.objects.create(user=user, timezone="Not/AZone")
    assert not Subscription.objects.exists()


def test_valid_subscription_saves(user):
    subscription = Subscription.objects.create(user=user, tier="plus", timezone="America/New_York")
    subscription.full_clean()
    assert subscription.status == Subscription.Status.ACTIVE
