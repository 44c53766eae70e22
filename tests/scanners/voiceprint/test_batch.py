"""voiceprint.batch as production runs it: uploads stored in Django storage, enqueue, a burst worker."""

from datetime import timedelta

import numpy as np
import pytest
import time_machine
from django.utils import timezone

from jobs.models import JobRun
from scanners.voiceprint import engine
from scanners.voiceprint.batch import analysis_jobs_run
from scanners.voiceprint.models import AnalysisJob, Verdict, VoiceProfile, VoiceSample
from scanners.voiceprint.services import (
    EnrolmentRejected,
    Upload,
    UploadRejected,
    analysis_jobs_retry,
    voice_profile_enroll,
    voice_sample_upload,
)
from tests.factories import SubscriptionFactory
from tests.scanners.voiceprint import synth
from tests.scanners.voiceprint.synth import ALEX, BORIS

pytestmark = pytest.mark.django_db(transaction=True)
Status = AnalysisJob.Status


def wav(speaker, seconds: float, seed: int, rate: int = 16000, fmt: str = "pcm_16") -> bytes:
    audio = synth.utterance(speaker, seconds, seed)
    if rate != 16000:
        from scanners.voiceprint.audio import resample

        audio = resample(audio.astype(np.float64), 16000, rate)
    return synth.wav_bytes(audio, rate, fmt)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(scope="module")
def alex_enrolment():
    return [Upload(f"alex-{seed}.wav", wav(ALEX, 8.0, seed)) for seed in range(3)]


@pytest.fixture
def enrolled(transactional_db, alex_enrolment):
    subscription = SubscriptionFactory()
    voice_profile_enroll(subscription, alex_enrolment)
    return subscription


def batch(run_worker) -> JobRun:
    run_worker()
    run = JobRun.objects.filter(job_type="voiceprint.batch").latest("created_at")
    assert run.status == JobRun.Status.COMPLETED, run.error
    return run


def test_the_same_speaker_matches_and_a_different_one_does_not(enrolled, run_worker):
    # Alex at 44.1 kHz in 24-bit and Boris in float: the batch reads whatever was uploaded.
    alex = voice_sample_upload(enrolled, Upload("call-1.wav", wav(ALEX, 10.0, 100, rate=44100, fmt="pcm_24")))
    boris = voice_sample_upload(enrolled, Upload("call-2.wav", wav(BORIS, 10.0, 101, fmt="float_32")))

    run = batch(run_worker)

    alex_job, boris_job = AnalysisJob.objects.get(sample=alex), AnalysisJob.objects.get(sample=boris)
    assert (alex_job.status, alex_job.verdict) == (Status.DONE, Verdict.MATCH)
    assert alex_job.similarity >= engine.MATCH_THRESHOLD
    assert (boris_job.status, boris_job.verdict) == (Status.DONE, Verdict.MISMATCH)
    assert boris_job.similarity < engine.MISMATCH_THRESHOLD
    assert alex_job.details["source"] == {"rate": 44100, "channels": 1, "encoding": "pcm_24"}
    alex.refresh_from_db()
    assert alex.duration == pytest.approx(10.0, abs=0.01)
    assert run.result["done"] == 2 and run.result["verdicts"] == {"match": 1, "mismatch": 1}
    assert run.progress == 100


def test_a_smooth_machine_voice_is_flagged_likely_synthetic(enrolled, run_worker):
    sample = voice_sample_upload(enrolled, Upload("robot.wav", wav(synth.robotic(ALEX), 10.0, 102)))

    batch(run_worker)

    job = AnalysisJob.objects.get(sample=sample)
    assert job.verdict == Verdict.LIKELY_SYNTHETIC
    assert job.synthetic_score >= engine.SYNTHETIC_THRESHOLD


def bad_files() -> dict[str, bytes]:
    good = wav(ALEX, 3.0, 7)
    quiet = synth.wav_bytes(np.full(16000 * 3, 1e-5), 16000)
    return {
        "not_audio": b"%PDF-1.7 this is a document, not a recording" * 10,
        "truncated": good[: len(good) // 2],
        "empty": b"",
        "silent": quiet,
        "too_long": wav(ALEX, 6.0, 8),
    }


def test_each_bad_file_fails_its_own_job_with_a_reason_and_the_batch_goes_on(enrolled, run_worker, settings):
    settings.VOICEPRINT_MAX_SECONDS = 5.0
    bad = {code: voice_sample_upload(enrolled, Upload(f"{code}.wav", content)) for code, content in bad_files().items()}
    good = voice_sample_upload(enrolled, Upload("good.wav", wav(ALEX, 4.5, 103)))

    run = batch(run_worker)

    for code, sample in bad.items():
        job = AnalysisJob.objects.get(sample=sample)
        assert (job.status, job.error_code, job.verdict) == (Status.FAILED, code, ""), job.error
        assert job.error
    assert "lasts 6.0 s; at most 5 s" in AnalysisJob.objects.get(sample=bad["too_long"]).error
    good_job = AnalysisJob.objects.get(sample=good)
    assert good_job.status == Status.DONE and good_job.verdict
    assert run.result["failed"] == 5 and run.result["done"] == 1


def test_running_the_batch_twice_analyses_nothing_twice(enrolled, run_worker):
    sample = voice_sample_upload(enrolled, Upload("call.wav", wav(ALEX, 5.0, 104)))
    batch(run_worker)
    first = AnalysisJob.objects.get(sample=sample)

    report = analysis_jobs_run()

    again = AnalysisJob.objects.get(sample=sample)
    assert report.done == report.failed == 0
    assert (again.finished_at, again.attempts) == (first.finished_at, 1)
    assert AnalysisJob.objects.count() == 1


def test_a_sample_without_an_enrolled_voice_fails_until_retried_after_enrolment(alex_enrolment, run_worker):
    subscription = SubscriptionFactory()
    sample = voice_sample_upload(subscription, Upload("call.wav", wav(ALEX, 5.0, 105)))
    batch(run_worker)
    job = AnalysisJob.objects.get(sample=sample)
    assert (job.status, job.error_code) == (Status.FAILED, "no_profile")

    voice_profile_enroll(subscription, alex_enrolment)
    assert analysis_jobs_retry(AnalysisJob.objects.all()) == 1
    batch(run_worker)

    job.refresh_from_db()
    assert (job.status, job.verdict, job.error_code) == (Status.DONE, Verdict.MATCH, "")


def test_a_stored_file_that_vanished_fails_as_missing(enrolled, run_worker):
    sample = voice_sample_upload(enrolled, Upload("call.wav", wav(ALEX, 3.0, 106)))
    sample.file.storage.delete(sample.file.name)

    batch(run_worker)

    assert AnalysisJob.objects.get(sample=sample).error_code == "missing_file"


def test_a_batch_that_died_leaves_its_jobs_to_the_next_one(enrolled):
    sample = voice_sample_upload(enrolled, Upload("call.wav", wav(ALEX, 3.0, 107)))
    AnalysisJob.objects.update(
        status=Status.RUNNING, claim_token="dead", claimed_until=timezone.now() + timedelta(minutes=10), attempts=1
    )

    assert analysis_jobs_run().done == 0  # its lease still holds

    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        assert analysis_jobs_run().done == 1
    job = AnalysisJob.objects.get(sample=sample)
    assert (job.status, job.attempts) == (Status.DONE, 2)


def test_a_file_that_keeps_killing_its_worker_is_failed_not_taken_forever(enrolled):
    sample = voice_sample_upload(enrolled, Upload("call.wav", wav(ALEX, 3.0, 108)))
    AnalysisJob.objects.update(status=Status.RUNNING, claim_token="dead", claimed_until=timezone.now(), attempts=3)

    with time_machine.travel(timezone.now() + timedelta(seconds=1)):
        report = analysis_jobs_run()

    job = AnalysisJob.objects.get(sample=sample)
    assert (job.status, job.error_code) == (Status.FAILED, "worker_crashed")
    assert report.errors == {"worker_crashed": 1}


def test_an_upload_over_the_size_limit_is_refused_and_nothing_is_stored(enrolled, settings, media):
    settings.VOICEPRINT_MAX_UPLOAD_BYTES = 1000
    with pytest.raises(UploadRejected, match="at most 1000 bytes"):
        voice_sample_upload(enrolled, Upload("big.wav", b"\0" * 1001))
    assert not VoiceSample.objects.filter(purpose="analysis").exists()
    assert not JobRun.objects.filter(job_type="voiceprint.batch").exists()


def test_enrolment_with_a_bad_recording_names_it_and_changes_nothing(transactional_db, alex_enrolment, media):
    subscription = SubscriptionFactory()
    with pytest.raises(EnrolmentRejected, match=r"broken.wav: .*\(truncated\)"):
        voice_profile_enroll(subscription, [*alex_enrolment[:2], Upload("broken.wav", alex_enrolment[2].content[:500])])
    assert not VoiceProfile.objects.exists() and not VoiceSample.objects.exists()
    assert not media.exists() or not any(media.rglob("*.wav"))


def test_enrolment_stores_its_recordings_and_re_enrolment_replaces_the_voice(transactional_db, alex_enrolment):
    subscription = SubscriptionFactory()
    first = voice_profile_enroll(subscription, alex_enrolment[:1])
    second = voice_profile_enroll(subscription, alex_enrolment)

    assert first.pk == second.pk and second.sample_count == 3
    assert second.model_name == engine.FeatureSpeakerModel.name
    stored = VoiceSample.objects.filter(subscription=subscription, purpose="enrolment")
    assert stored.count() == 4
    assert all(sample.file.storage.exists(sample.file.name) for sample in stored)


def test_stored_verdicts_are_the_engines_verdicts():
    assert {choice.value for choice in Verdict} == {verdict.value for verdict in engine.Verdict}


def test_operators_find_failed_analyses_and_queue_them_again(admin_client, enrolled):
    sample = voice_sample_upload(enrolled, Upload("notes.txt", b"not a recording at all"))
    analysis_jobs_run()
    job = AnalysisJob.objects.get(sample=sample)

    page = admin_client.get("/admin/scanners/analysisjob/", {"error_code__exact": "not_audio"})
    assert page.status_code == 200 and "notes.txt (Analysis)" in page.content.decode()
    for url in (
        "/admin/scanners/voicesample/",
        "/admin/scanners/voiceprofile/",
        f"/admin/scanners/analysisjob/{job.pk}/change/",
    ):
        assert admin_client.get(url).status_code == 200

    response = admin_client.post(
        "/admin/scanners/analysisjob/", {"action": "retry", "_selected_action": [job.pk]}, follow=True
    )
    assert "1 analysis job(s) queued again." in response.content.decode()
    job.refresh_from_db()
    assert (job.status, job.error_code) == (Status.PENDING, "")
