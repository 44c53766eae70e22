"""The scanners app's admin, defined by product in scanners/<product>/admin.py."""

import scanners.darkwatch.admin
import scanners.hometitle.admin
import scanners.removebrokers.admin
import scanners.voiceprint.admin  # noqa: F401
