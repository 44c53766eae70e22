import pytest

from jobs import job_type, registry
from jobs.errors import PayloadInvalid, UnknownJobType
from jobs.registry import Payload


class Msg(Payload):
    message: str
    count: int = 1


def noop(ctx, payload):
    return None


def test_builtin_ping_is_registered():
    assert "jobs.ping" in registry.names()
    assert registry.get("jobs.ping").max_attempts == 4


def test_unknown_name_fails_loudly():
    with pytest.raises(UnknownJobType, match=r"nope\.nothing"):
        registry.get("nope.nothing")


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"name": "NoDots"}, "dotted lowercase"),
        ({"queue": "urgent"}, "queue must be one of"),
        ({"retry_delays": (60, -1)}, "retry_delays"),
        ({"timeout": 0}, "timeout"),
        ({"payload": dict}, "pydantic model"),
    ],
)
def test_bad_declarations_fail_at_import(kwargs, problem):
    declaration = {"name": "tests.bad", "payload": Msg, **kwargs}
    name = declaration.pop("name")
    with pytest.raises(ValueError, match=problem):
        job_type(name, **declaration)(noop)
    assert "tests.bad" not in registry


def test_a_name_cannot_be_taken_twice():
    with pytest.raises(ValueError, match="already registered"):
        job_type("jobs.ping", payload=Msg)(noop)


def test_validation_reports_every_field():
    ping = registry.get("jobs.ping")
    with pytest.raises(PayloadInvalid) as error:
        ping.validate({"message": 5, "extra": True})
    assert set(error.value.errors) == {"message", "extra"}

    with pytest.raises(PayloadInvalid) as error:
        ping.validate(["not", "an", "object"])
    assert "__root__" in error.value.errors


def test_json_schema_describes_the_payload():
    schema = registry.get("jobs.ping").json_schema()
    assert schema["required"] == ["message"]
    assert schema["properties"]["message"]["type"] == "string"
