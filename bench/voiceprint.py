"""VoicePrint engine speed and memory, beside the plain library calls it builds on.

Figures: analysis time per 10 s of 16 kHz speech and the real-time factor (median of
several runs after a warm-up), a 1,000-sample batch (3-5 s each, decoded from WAV and
analysed one after another as the batch handler does) with its throughput and peak
memory, and, on the same audio in the same run, bare `librosa.feature.mfcc` and a bare
scipy STFT for scale. The speech is the synthetic voice the tests use.
"""

import resource
import statistics
import tempfile
import time
import tracemalloc

import numpy as np
import scipy.fft

from scanners.voiceprint.audio import read_wav
from scanners.voiceprint.engine import FeatureSpeakerModel, analyse, enroll
from tests.scanners.voiceprint import synth

RUNS = 15
BATCH = 1000
POOL = 40  # distinct recordings cycled through the batch (the model caches only the last one)


def main() -> None:
    started = time.perf_counter()
    model = FeatureSpeakerModel()
    profile = enroll([synth.utterance(synth.ALEX, 8.0, seed) for seed in range(3)], model=model)
    print(f"   model construction + enrolment of 3 x 8 s (first call): {(time.perf_counter() - started) * 1e3:.0f} ms")

    takes = [synth.utterance(synth.ALEX, 10.0, 1000 + run) for run in range(RUNS + 1)]
    analyse(profile, takes[0], model=model)  # warm-up
    ours = _median_ms(lambda audio: analyse(profile, audio, model=model), takes[1:])
    print(f"   analyse() per 10 s of 16 kHz audio: {ours:.1f} ms median of {RUNS} (real-time factor {ours / 10e3:.4f})")

    stft = _median_ms(_bare_stft, takes[1:])
    print(
        f"   bare scipy STFT (25 ms window, 10 ms hop) on the same audio: {stft:.1f} ms  (analyse = {ours / stft:.1f}x)"
    )
    _librosa_mfcc(takes, ours)

    pool = [
        synth.wav_bytes(synth.utterance(synth.SPEAKERS[index % 5], 3.0 + (index % 3), 2000 + index), 16000)
        for index in range(POOL)
    ]
    audio_seconds = sum(read_wav(pool[index % POOL]).duration for index in range(BATCH))
    rss_before = _max_rss_mb()
    started = time.perf_counter()
    verdicts = _batch(pool, profile, model)
    elapsed = time.perf_counter() - started
    rss_after = _max_rss_mb()
    print(
        f"   batch of {BATCH} samples ({audio_seconds:.0f} s of audio, read_wav + analyse each): {elapsed:.1f} s, "
        f"{BATCH / elapsed:.0f} samples/s, {audio_seconds / elapsed:.0f} s of audio per second"
    )
    print(f"   verdicts in the batch: {dict(sorted(verdicts.items()))}")

    print(f"   process max RSS over that batch: {rss_before:.0f} -> {rss_after:.0f} MiB")
    _handler_batch(pool, profile)


def _handler_batch(pool: list[bytes], profile) -> None:
    """The real batch (scanners.voiceprint.batch): 1,000 AnalysisJobs over files in Django storage, traced."""
    from django.contrib.auth import get_user_model
    from django.test import override_settings
    from django.utils import timezone

    from kordant.models import Subscription
    from scanners.voiceprint.batch import analysis_jobs_run
    from scanners.voiceprint.models import AnalysisJob, VoiceProfile, VoiceSample
    from scanners.voiceprint.services import Upload, _sample_store

    with tempfile.TemporaryDirectory() as media, override_settings(MEDIA_ROOT=media):
        user, _ = get_user_model().objects.get_or_create(username="bench-voiceprint")
        subscription = Subscription.objects.create(user=user)
        VoiceProfile.objects.create(
            subscription=subscription,
            embedding=profile.to_dict(),
            model_name=profile.model_name,
            sample_count=profile.sample_count,
            speech_seconds=profile.speech_seconds,
            enrolled_at=timezone.now(),
        )
        # POOL files in storage, each shared by BATCH / POOL samples: what is read is real, the disk stays small.
        stored = [_sample_store(subscription, Upload(f"take-{n}.wav", data), "analysis") for n, data in enumerate(pool)]
        samples = VoiceSample.objects.bulk_create(
            VoiceSample(subscription=subscription, file=stored[n % POOL].file.name, size_bytes=len(pool[n % POOL]))
            for n in range(BATCH - POOL)
        )
        AnalysisJob.objects.bulk_create(AnalysisJob(sample=sample) for sample in [*stored, *samples])

        tracemalloc.start()
        started = time.perf_counter()
        report = analysis_jobs_run()
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    print(
        f"   voiceprint.batch over {BATCH} stored samples (database, storage, claims): {report.done} done, "
        f"{report.failed} failed, {elapsed:.1f} s under tracemalloc; peak traced memory {peak / 2**20:.1f} MiB"
    )


def _batch(pool: list[bytes], profile, model) -> dict[str, int]:
    verdicts: dict[str, int] = {}
    for index in range(BATCH):
        result = analyse(profile, read_wav(pool[index % POOL]).samples, model=model)
        verdicts[result.verdict.value] = verdicts.get(result.verdict.value, 0) + 1
    return verdicts


def _median_ms(function, inputs: list[np.ndarray]) -> float:
    timings = []
    for audio in inputs:
        started = time.perf_counter()
        function(audio)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1e3


def _bare_stft(audio: np.ndarray) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(audio, 400)[::160]
    return np.abs(scipy.fft.rfft(frames * np.hamming(400), 512)) ** 2


def _librosa_mfcc(takes: list[np.ndarray], ours: float) -> None:
    import librosa

    started = time.perf_counter()
    librosa.feature.mfcc(y=takes[0], sr=16000, n_mfcc=13, n_fft=512, hop_length=160, win_length=400)
    first = (time.perf_counter() - started) * 1e3
    steady = _median_ms(
        lambda audio: librosa.feature.mfcc(y=audio, sr=16000, n_mfcc=13, n_fft=512, hop_length=160, win_length=400),
        takes[1:],
    )
    print(f"   bare librosa.feature.mfcc on the same audio: {steady:.1f} ms  (analyse = {ours / steady:.1f}x)")
    print(
        f"   librosa.feature.mfcc first call in this process: {first:.0f} ms "
        "(about 23 s on a machine whose numba cache is cold, hence the engine's own MFCC)"
    )


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
