import pytest

from kordant.embedded_redis import EmbeddedRedis, free_port


@pytest.mark.django_db
def test_ok_when_database_and_redis_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "redis": "ok", "scheduler": "missing: no heartbeat"}


@pytest.mark.django_db
def test_reports_the_schedulers_heartbeat(client, redis_conn):
    from jobs.scheduling import scheduler_heartbeat_write

    scheduler_heartbeat_write("s1", last_pass_seconds=0.01, fired=0)
    assert client.get("/healthz").json()["scheduler"] == "ok"


@pytest.mark.django_db
def test_503_names_redis_when_its_redis_is_stopped(client, settings, tmp_path):
    server = EmbeddedRedis(tmp_path, port=free_port(), persist=False).start()
    settings.REDIS_URL = server.url
    assert client.get("/healthz").status_code == 200

    server.stop()
    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["database"] == "ok"
    assert response.json()["redis"].startswith("error")
