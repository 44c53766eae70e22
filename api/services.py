"""API writes that belong to no product: issuing API tokens."""

from django.db import transaction

from api.models import APIToken

# Each login issues a new key (an old one cannot be shown again: only its digest is kept);
# a user's older keys beyond this many are revoked, so logins in a loop leave no pile.
TOKENS_KEPT_PER_USER = 10


@transaction.atomic
def api_token_issue(user, *, replace: bool = False) -> str:
    """A new API key for `user` (its digest stored); `replace` revokes their other keys first."""
    if replace:
        APIToken.objects.filter(user=user).delete()
    token = APIToken.objects.create(user=user)
    stale = (
        APIToken.objects.filter(user=user)
        .order_by("-created", "-pk")
        .values_list("pk", flat=True)[TOKENS_KEPT_PER_USER:]
    )
    APIToken.objects.filter(pk__in=list(stale)).delete()
    return token.key
