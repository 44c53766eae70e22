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


class OperatorFactory(UserFactory):
    """A staff member in the operators group (views everything, runs jobs); `schedulers=True` also edits configs."""

    is_staff = True

    class Meta:
        skip_postgeneration_save = True

    @factory.post_generation
    def operator_permissions(user, create, extracted, schedulers=False, **kwargs):
        from django.contrib.auth.models import Group, Permission

        from jobs.operators import OPERATORS_GROUP

        user.groups.add(Group.objects.get(name=OPERATORS_GROUP))
        if schedulers:
            user.user_permissions.add(Permission.objects.get(content_type__app_label="jobs", codename="schedulers"))
