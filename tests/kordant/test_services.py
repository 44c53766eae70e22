import pytest
from django.contrib.auth import get_user_model

from kordant.services import admin_user_ensure


@pytest.mark.django_db
def test_admin_created_once_with_a_usable_password():
    user, password = admin_user_ensure("admin")
    assert user.is_superuser and user.check_password(password)

    again, second_password = admin_user_ensure("admin", "ignored")
    assert again.pk == user.pk and second_password is None
    assert get_user_model().objects.count() == 1
