"""The VoicePrint batch: analyse every pending AnalysisJob, one sample at a time, each on its own.

Jobs are claimed a few at a time with one conditional UPDATE (pending, or running with a
lapsed lease, becomes running under a random token), so batches on several workers share
the work and a batch that died leaves its jobs to the next one. Every outcome is written
only where the token still matches. A job that was taken MAX_ATTEMPTS times without an
outcome (a file that kills its worker, say) is failed as `worker_crashed` instead of
being taken forever.

A bad file fails only its own job, with a stable `error_code` (the audio reader's reason
codes: not_audio, truncated, empty, silent, too_long, unsupported; and missing_file,
no_profile, profile_model_mismatch, internal_error) and a sentence in `error`.
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from scanners.voiceprint.audio import AudioRejected, read_wav
from scanners.voiceprint.engine import Profile, SpeakerModel, analyse, load_model
from scanners.voiceprint.models import AnalysisJob, VoiceProfile

logger = logging.getLogger(__name__)

Status = AnalysisJob.Status
BATCH_SIZE = 20
# Longer than a batch of BATCH_SIZE two-minute recordings takes (about 1.5 s each).
CLAIM_SECONDS = 600
MAX_ATTEMPTS = 3


@functools.cache
def _load(path: str) -> SpeakerModel:
    return load_model(path)


def speaker_model() -> SpeakerModel:
    """The VOICEPRINT_MODEL speaker model, loaded once per process."""
    return _load(settings.VOICEPRINT_MODEL)


@dataclass
class BatchReport:
    """What one batch run did."""

    done: int = 0
    failed: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class _Failed(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def analysis_jobs_run(
    *,
    progress: Callable[[float, str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    batch_size: int = BATCH_SIZE,
) -> BatchReport:
    """Analyse pending jobs until none is left (or the run is cancelled); see the module docstring."""
    progress = progress or (lambda percent, message="": None)
    cancelled = cancelled or (lambda: False)
    report = BatchReport()
    model = speaker_model()
    profiles: dict[int, Profile | None] = {}
    total = max(AnalysisJob.objects.filter(_claimable(timezone.now())).count(), 1)
    handled = 0
    while not cancelled():
        token, jobs = _claim(batch_size)
        if not jobs:
            break
        for job in jobs:
            _analyse_one(job, token, model, profiles, report)
            handled += 1
            progress(min(99.0, 100.0 * handled / total), f"{handled} samples analysed")
    progress(100.0, f"{handled} samples analysed")
    return report


def _claimable(now) -> Q:
    return Q(status=Status.PENDING) | Q(status=Status.RUNNING, claimed_until__lt=now)


def _claim(batch_size: int) -> tuple[str, list[AnalysisJob]]:
    now = timezone.now()
    candidates = list(
        AnalysisJob.objects.filter(_claimable(now))
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:batch_size]
    )
    if not candidates:
        return "", []
    token = secrets.token_hex(16)
    # The conditions again in the UPDATE, on the row's own columns: the first writer owns the job.
    AnalysisJob.objects.filter(_claimable(now), pk__in=candidates).update(
        status=Status.RUNNING,
        claim_token=token,
        claimed_until=now + timedelta(seconds=CLAIM_SECONDS),
        started_at=now,
        attempts=F("attempts") + 1,
    )
    jobs = list(AnalysisJob.objects.filter(claim_token=token).select_related("sample").order_by("created_at", "pk"))
    return token, jobs


def _analyse_one(job: AnalysisJob, token: str, model, profiles: dict, report: BatchReport) -> None:
    sample = job.sample
    try:
        if job.attempts > MAX_ATTEMPTS:
            raise _Failed(
                "worker_crashed", f"taken {job.attempts - 1} times without finishing; the file may crash the analyser"
            )
        profile = _profile(sample.subscription_id, profiles)
        audio = _read(sample)
        sample.duration = round(audio.duration, 3)
        sample.save(update_fields=["duration"])
        try:
            result = analyse(profile, audio.samples, audio.sample_rate, model=model)
        except ValueError as exc:  # the profile was made by another model
            raise _Failed("profile_model_mismatch", str(exc)) from None
    except _Failed as failure:
        _finish(job, token, report, status=Status.FAILED, error_code=failure.code, error=failure.message)
        return
    except Exception as exc:  # a bug on one file must not stop the batch; the traceback goes to the log
        logger.exception("analysis job %s (sample %s) failed unexpectedly", job.pk, sample.pk)
        _finish(
            job, token, report, status=Status.FAILED, error_code="internal_error", error=f"{type(exc).__name__}: {exc}"
        )
        return
    _finish(
        job,
        token,
        report,
        status=Status.DONE,
        verdict=result.verdict.value,
        similarity=result.similarity,
        synthetic_score=result.synthetic_score,
        details={
            **result.details,
            "source": {"rate": audio.source_rate, "channels": audio.channels, "encoding": audio.encoding},
        },
        error="",
        error_code="",
    )


def _profile(subscription_id: int, profiles: dict) -> Profile:
    if subscription_id not in profiles:
        row = VoiceProfile.objects.filter(subscription_id=subscription_id).values_list("embedding", flat=True).first()
        profiles[subscription_id] = Profile.from_dict(row) if row else None
    if profiles[subscription_id] is None:
        raise _Failed("no_profile", "the subscription has no enrolled voice to compare with; enrol first, then retry")
    return profiles[subscription_id]


def _read(sample):
    try:
        with sample.file.open("rb") as handle:
            return read_wav(handle, settings.VOICEPRINT_MAX_SECONDS)
    except AudioRejected as exc:
        raise _Failed(exc.reason_code, exc.message) from None
    except FileNotFoundError:
        raise _Failed("missing_file", f"the stored file {sample.file.name} is gone") from None


def _finish(job: AnalysisJob, token: str, report: BatchReport, **values) -> None:
    values.update(claim_token="", claimed_until=None, finished_at=timezone.now())
    if not AnalysisJob.objects.filter(pk=job.pk, claim_token=token).update(**values):
        logger.warning("analysis job %s: claim lost before its outcome was written", job.pk)
        return
    if values["status"] == Status.DONE:
        report.done += 1
        report.verdicts[values["verdict"]] = report.verdicts.get(values["verdict"], 0) + 1
    else:
        report.failed += 1
        report.errors[values["error_code"]] = report.errors.get(values["error_code"], 0) + 1
