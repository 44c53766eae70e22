"""The scanners app's models, defined by product in scanners/<product>/models.py."""

from scanners.darkwatch.models import *  # noqa: F403
from scanners.hometitle.models import *  # noqa: F403
from scanners.removebrokers.models import *  # noqa: F403
from scanners.voiceprint.models import *  # noqa: F403
