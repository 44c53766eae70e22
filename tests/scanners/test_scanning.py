import pytest

from jobs.errors import PermanentJobError
from scanners.darkwatch.providers import CorpusProvider, HIBPProvider
from scanners.darkwatch.providers import providers_from_settings as darkwatch_providers
from scanners.hometitle.providers import RecorderProvider, SodaProvider
from scanners.hometitle.providers import providers_from_settings as hometitle_providers


def test_providers_come_in_the_settings_order(settings):
    settings.DARKWATCH_PROVIDERS = ["hibp", "corpus"]
    settings.HIBP_API_KEY = "key"
    settings.HOMETITLE_PROVIDERS = ["recorder", "soda"]
    settings.HOMETITLE_SODA_BASE_URL, settings.HOMETITLE_SODA_DATASET = "http://127.0.0.1:9", "abcd-1234"

    made = darkwatch_providers(), hometitle_providers()
    try:
        assert [type(p) for p in made[0]] == [HIBPProvider, CorpusProvider]
        assert [type(p) for p in made[1]] == [RecorderProvider, SodaProvider]
    finally:
        for provider in (*made[0], *made[1]):
            provider.close()


@pytest.mark.parametrize(
    ("setting", "providers", "known"),
    [
        ("DARKWATCH_PROVIDERS", darkwatch_providers, "corpus, hibp"),
        ("HOMETITLE_PROVIDERS", hometitle_providers, "recorder, soda"),
    ],
)
def test_an_unknown_provider_name_fails_permanently_naming_the_setting(settings, setting, providers, known):
    setattr(settings, setting, ["nope"])
    with pytest.raises(PermanentJobError, match=rf"^{setting} names an unknown provider 'nope'; known: {known}$"):
        providers()
