"""The Redis side of runs: what push writes is exactly what RQ itself would write."""

import json
import zlib

from rq import Queue

from jobs.dispatch import RQ_FAILURE_TTL, RQ_RESULT_TTL, RUNNER, Dispatch, get_queue, push
from jobs.worker import JSONJob

RUN_ID = "3f2c1a52-8a9e-4c61-9d51-1b6c2f0a7e11"


def test_push_writes_the_hash_rq_itself_writes(redis_conn):
    push([Dispatch(RUN_ID, "high", 120)], connection=redis_conn)
    ours = redis_conn.hgetall(f"rq:job:{RUN_ID}")
    redis_conn.flushdb()

    queue = get_queue("high", connection=redis_conn)
    with redis_conn.pipeline() as pipe:
        queue.enqueue_many(
            [
                Queue.prepare_data(
                    RUNNER,
                    args=(RUN_ID,),
                    job_id=RUN_ID,
                    timeout=120,
                    result_ttl=RQ_RESULT_TTL,
                    failure_ttl=RQ_FAILURE_TTL,
                    description=f"run {RUN_ID}",
                )
            ],
            pipeline=pipe,
        )
        pipe.execute()
    theirs = redis_conn.hgetall(f"rq:job:{RUN_ID}")

    moments = {b"created_at", b"enqueued_at", b"data"}
    assert set(ours) == set(theirs)
    assert {k: v for k, v in ours.items() if k not in moments} == {k: v for k, v in theirs.items() if k not in moments}
    # RQ compresses the data; ours is the same JSON uncompressed, which RQ reads as well.
    assert json.loads(ours[b"data"]) == json.loads(zlib.decompress(theirs[b"data"]))


def test_a_pushed_run_loads_as_an_rq_job_on_its_queue(redis_conn):
    push([Dispatch(RUN_ID, "low", 30)], connection=redis_conn)

    job = JSONJob.fetch(RUN_ID, connection=redis_conn)
    assert (job.func_name, job.args, job.origin, job.timeout) == (RUNNER, [RUN_ID], "low", 30)
    assert job.get_status() == "queued"
    assert redis_conn.lrange("rq:queue:low", 0, -1) == [RUN_ID.encode()]
    assert b"rq:queue:low" in redis_conn.smembers("rq:queues")
