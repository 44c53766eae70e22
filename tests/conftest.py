import django_rq
import pytest


@pytest.fixture(autouse=True)
def redis_conn():
    """The real Redis the project uses, flushed around every test."""
    connection = django_rq.get_connection("default")
    connection.flushdb()
    yield connection
    connection.flushdb()
