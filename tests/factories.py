"""factory_boy factories shared by the test packages."""

import factory
from django.contrib.auth import get_user_model

from kordant.models import Subscription


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    user = factory.SubFactory(UserFactory)
    tier = Subscription.Tier.PREMIUM
    timezone = "UTC"
