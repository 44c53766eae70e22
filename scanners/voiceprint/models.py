"""VoicePrint: a subscription's enrolled voice, the recordings it sends us, and one analysis per recording."""

import uuid

from django.db import models

__all__ = ["AnalysisJob", "VoiceProfile", "VoiceSample"]


def sample_path(sample: "VoiceSample", filename: str) -> str:
    # Our own name, never the uploader's: no path tricks, no collisions, no personal data in paths.
    return f"voiceprint/{sample.subscription_id}/{uuid.uuid4().hex}.wav"


class Verdict(models.TextChoices):
    """engine.Verdict's values (stored; a test keeps the two equal), without importing numpy into every process."""

    MATCH = "match", "Match"
    MISMATCH = "mismatch", "Mismatch"
    LIKELY_SYNTHETIC = "likely_synthetic", "Likely synthetic"
    INCONCLUSIVE = "inconclusive", "Inconclusive"


class VoiceProfile(models.Model):
    """The enrolled voice of a subscription's customer: the mean embedding of their enrolment recordings."""

    subscription = models.OneToOneField("kordant.Subscription", on_delete=models.CASCADE, related_name="voice_profile")
    # engine.Profile.to_dict(): the embedding, the model that made it, sample count, seconds of speech.
    embedding = models.JSONField()
    model_name = models.CharField(max_length=100)
    sample_count = models.PositiveIntegerField()
    speech_seconds = models.FloatField()
    enrolled_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"voice profile of subscription {self.subscription_id} ({self.model_name})"


class VoiceSample(models.Model):
    """One uploaded recording, kept in Django's default storage."""

    class Purpose(models.TextChoices):
        ENROLMENT = "enrolment", "Enrolment"
        ANALYSIS = "analysis", "Analysis"

    subscription = models.ForeignKey("kordant.Subscription", on_delete=models.CASCADE, related_name="voice_samples")
    purpose = models.CharField(max_length=16, choices=Purpose.choices, default=Purpose.ANALYSIS)
    file = models.FileField(upload_to=sample_path, max_length=300)
    original_name = models.CharField(max_length=255, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    uploaded_at = models.DateTimeField(auto_now_add=True)
    # Seconds, from the file's header; known once the file has been read.
    duration = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-uploaded_at"]
        indexes = [models.Index(fields=["subscription", "uploaded_at"], name="voicesample_sub_uploaded")]

    def __str__(self) -> str:
        return f"{self.original_name or self.file.name} ({self.get_purpose_display()})"


class AnalysisJob(models.Model):
    """The analysis of one sample: at most one per sample, so a batch run twice analyses nothing twice."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    sample = models.OneToOneField(VoiceSample, on_delete=models.CASCADE, related_name="analysis")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    similarity = models.FloatField(null=True, blank=True)
    synthetic_score = models.FloatField(null=True, blank=True)
    verdict = models.CharField(max_length=20, choices=Verdict.choices, blank=True)
    details = models.JSONField(default=dict, blank=True)
    # Why it failed: a stable code (audio.AudioRejected.REASON_CODES, no_profile, ...) and words for people.
    error_code = models.CharField(max_length=32, blank=True)
    error = models.TextField(blank=True)
    # Times a batch took it; one that keeps killing its worker is failed rather than taken forever.
    attempts = models.PositiveIntegerField(default=0)
    claim_token = models.CharField(max_length=32, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="analysisjob_status")]

    def __str__(self) -> str:
        return f"analysis of sample {self.sample_id} ({self.status})"
