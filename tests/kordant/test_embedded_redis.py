import redis

from kordant.embedded_redis import EmbeddedRedis, free_port


def test_starts_answers_persists_across_restart_and_stops(tmp_path):
    server = EmbeddedRedis(tmp_path, port=free_port()).start()
    try:
        server.client().set("kordant:probe", "still here")
    finally:
        server.stop()
    assert (tmp_path / "appendonlydir").exists() or (tmp_path / "kordant.aof").exists()

    with EmbeddedRedis(tmp_path, port=server.port) as restarted:
        assert restarted.client().get("kordant:probe") == b"still here"

    try:
        redis.Redis(port=server.port, socket_connect_timeout=0.5).ping()
        answered = True
    except redis.ConnectionError:
        answered = False
    assert not answered, "redis-server kept listening after stop()"


def test_default_mode_listens_on_a_private_unix_socket(tmp_path):
    with EmbeddedRedis(tmp_path) as server:
        assert server.url.startswith("unix://")
        assert server.client().ping()
        assert server.client().config_get("port")["port"] == "0"  # no TCP port at all
