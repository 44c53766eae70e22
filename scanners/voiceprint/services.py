"""VoicePrint writes: enrolling a voice, taking uploads, and operator actions on analyses."""

from __future__ import annotations

import io
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from scanners.voiceprint.models import AnalysisJob, VoiceProfile, VoiceSample


class UploadRejected(ValueError):
    """An upload refused before anything was stored (too large, empty name); the message says why."""


class EnrolmentRejected(ValueError):
    """An enrolment recording cannot be used (not audio, too short...); nothing was stored or changed."""


@dataclass(frozen=True)
class Upload:
    """A recording as the caller received it."""

    name: str
    content: bytes


def voice_sample_upload(subscription, upload: Upload) -> VoiceSample:
    """Store a recording and queue its analysis; the batch decides whether it is usable audio."""
    _check_size(upload)
    with transaction.atomic():
        sample = _sample_store(subscription, upload, VoiceSample.Purpose.ANALYSIS)
        AnalysisJob.objects.create(sample=sample)
        voiceprint_batch_soon()
    return sample


def voice_profile_enroll(subscription, uploads: list[Upload]) -> VoiceProfile:
    """Enrol (or re-enrol) the customer's voice from one or more recordings; EnrolmentRejected names a bad one."""
    from scanners.voiceprint.audio import AudioRejected, read_wav
    from scanners.voiceprint.batch import speaker_model
    from scanners.voiceprint.engine import NotEnoughSpeech, enroll

    if not uploads:
        raise EnrolmentRejected("enrolment needs at least one recording")
    recordings = []
    for upload in uploads:
        _check_size(upload)
        try:
            recordings.append(read_wav(io.BytesIO(upload.content), settings.VOICEPRINT_MAX_SECONDS).samples)
        except AudioRejected as exc:
            raise EnrolmentRejected(f"{upload.name}: {exc.message} ({exc.reason_code})") from None
    try:
        profile = enroll(recordings, model=speaker_model())
    except NotEnoughSpeech as exc:
        raise EnrolmentRejected(str(exc)) from None

    with transaction.atomic():
        for upload in uploads:
            _sample_store(subscription, upload, VoiceSample.Purpose.ENROLMENT)
        data = profile.to_dict()
        voice_profile, _ = VoiceProfile.objects.update_or_create(
            subscription=subscription,
            defaults={
                "embedding": data,
                "model_name": profile.model_name,
                "sample_count": profile.sample_count,
                "speech_seconds": profile.speech_seconds,
                "enrolled_at": timezone.now(),
            },
        )
    return voice_profile


def voiceprint_batch_soon():
    """Ask for a batch run (one waiting run at a time; the scheduler's every-five-minutes run also covers it)."""
    from jobs import enqueue

    return enqueue("voiceprint.batch", {}, dedupe_key="voiceprint.batch", trigger="event")


def analysis_jobs_retry(jobs) -> int:
    """Put failed analyses back in the queue (after a fix or a re-upload of the file); how many."""
    count = jobs.filter(status=AnalysisJob.Status.FAILED).update(
        status=AnalysisJob.Status.PENDING,
        attempts=0,
        error="",
        error_code="",
        claim_token="",
        claimed_until=None,
        finished_at=None,
    )
    if count:
        voiceprint_batch_soon()
    return count


def _check_size(upload: Upload) -> None:
    limit = settings.VOICEPRINT_MAX_UPLOAD_BYTES
    if len(upload.content) > limit:
        raise UploadRejected(f"{upload.name}: {len(upload.content)} bytes; at most {limit} bytes are accepted")


def _sample_store(subscription, upload: Upload, purpose: str) -> VoiceSample:
    sample = VoiceSample(
        subscription=subscription, purpose=purpose, original_name=upload.name[:255], size_bytes=len(upload.content)
    )
    # Stored before the row is written: a row never points at a file that is not there.
    sample.file.save(upload.name, ContentFile(upload.content), save=False)
    sample.save()
    return sample
