"""The REST API under /api/v1/: thin views over the apps' services and selectors (see README, "API")."""
