"""factory_boy factories for the scanners' models; identifiers go through the real encryption and hashing."""

import factory

from scanners.darkwatch.models import Breach, Watchlist, WatchlistItem
from scanners.hometitle.models import Property
from tests.factories import SubscriptionFactory


class WatchlistFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Watchlist

    subscription = factory.SubFactory(SubscriptionFactory)
    name = "Personal"


class WatchlistItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WatchlistItem

    watchlist = factory.SubFactory(WatchlistFactory)
    kind = "email"
    value = factory.Sequence(lambda n: f"person{n}@example.com")

    @classmethod
    def _create(cls, model_class, *args, value, **kwargs):
        item = model_class(*args, **kwargs)
        item.set_value(value)
        item.save()
        return item


class BreachFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Breach

    source = "corpus"
    name = factory.Sequence(lambda n: f"Breach{n}")
    data_classes = ["Email addresses", "Passwords"]
    severity = "critical"


class PropertyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Property

    subscription = factory.SubFactory(SubscriptionFactory)
    address = factory.Sequence(lambda n: f"{n} Elm Street, Springfield")
    county = "sangamon"
    parcel_number = factory.Sequence(lambda n: f"14-{n:06d}")
    owner_names = "Jane Q. Doe; John Doe"
