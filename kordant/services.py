import secrets

from django.contrib.auth import get_user_model


def admin_user_ensure(username: str, password: str | None = None) -> tuple[object, str | None]:
    """Create the local superuser if it is missing; return it and the password it was given, if new."""
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is not None:
        return user, None
    password = password or secrets.token_urlsafe(12)
    user = User.objects.create_superuser(username=username, email=f"{username}@localhost", password=password)
    return user, password
