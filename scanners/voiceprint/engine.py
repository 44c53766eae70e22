"""VoicePrint engine: compare a new voice sample with an enrolled voice and decide a verdict.

Flow: `enroll()` turns one or more recordings of the customer into a `Profile` (the mean
of their embeddings); `analyse()` embeds a new sample, takes the cosine similarity with
the profile, asks the model how synthetic the voice sounds, and maps both to a `Verdict`.
Audio is 16 kHz mono float32, as `scanners.voiceprint.audio.read_wav` returns it.

Verdict rules, in order (the constants below hold the numbers):

1. less than MIN_SPEECH_SECONDS of speech          -> inconclusive (nothing scored)
2. synthetic_score >= SYNTHETIC_THRESHOLD           -> likely_synthetic, whatever the similarity
3. similarity >= MATCH_THRESHOLD                    -> match
4. similarity <  MISMATCH_THRESHOLD                 -> mismatch
5. anything between                                 -> inconclusive

Replacing the model. Everything model-specific sits behind the `SpeakerModel` protocol:
a `name`, `embed(samples, sample_rate)` returning a fixed-length L2-normalised vector whose
cosine similarity means "same speaker", and `synthetic_score(samples, sample_rate)` in
[0, 1]. A trained neural model (an x-vector or ECAPA speaker encoder plus an anti-spoofing
classifier) plugs in by implementing those three members in a class that loads its
weights from local files, and pointing the `VOICEPRINT_MODEL` setting at it, e.g.
`VOICEPRINT_MODEL = "scanners.voiceprint.ecapa.EcapaSpeakerModel"`; the batch
(`scanners.voiceprint.batch.speaker_model()`) passes that setting to `load_model()`.
Profiles remember the model name, and `analyse()` refuses to compare embeddings from different models, so customers are
re-enrolled when the model changes. The thresholds must be re-calibrated for a new model.
A model may also offer `describe(samples, sample_rate) -> dict` with JSON-serialisable
measurements, which are copied into `Analysis.details`.

The default `FeatureSpeakerModel` is a classical, training-free scorer; see its docstring
for what it measures and how far it can be trusted.
"""

import functools
import hashlib
import importlib
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import numpy as np
import scipy.fft
from librosa.filters import mel as mel_filterbank
from scipy import signal

from scanners.voiceprint.audio import SAMPLE_RATE, resample

# Similarity thresholds for the feature model, set on 20 synthetic speakers (see
# tests/scanners/voiceprint/synth.py), enrolled from 3 x 10 s and tested on 10 s: genuine
# recordings score 0.91 at the median and 0.81 at the 5th percentile; other speakers
# score 0.09 at the median, but sound-alikes (pitch within 2 semitones, vocal tract
# within 5%) reach 0.9. At 0.8 / 0.5: 96% of genuine recordings match and none is a
# mismatch; 73% of impostor recordings are a mismatch and 6% (all sound-alikes) a match.
# A false match lets an impostor through, so the match bar is high and the band between
# is left to a person. Shorter recordings score lower: 5 s against 3 x 5 s matches ~60%.
MATCH_THRESHOLD = 0.8
MISMATCH_THRESHOLD = 0.5
# Scores are a weighted vote of three heuristics (see FeatureSpeakerModel); 0.7 needs at
# least two of them to be clearly machine-like.
SYNTHETIC_THRESHOLD = 0.7
# Below this much speech (voice activity, pauses excluded) neither pitch statistics nor
# average spectra settle down; the verdict is inconclusive and the models are not run.
MIN_SPEECH_SECONDS = 2.0

# Voice activity: a 25 ms frame is speech if it is within VAD_RANGE_DB of the loud end of
# the recording (95th percentile frame) and above an absolute floor.
VAD_RANGE_DB = 35.0
VAD_FLOOR_DBFS = -55.0
HOP = 160  # 10 ms frames at 16 kHz
_WINDOW = 400  # 25 ms


class Verdict(StrEnum):
    """The outcome of one analysis; the values are stored, so never rename them."""

    MATCH = "match"
    MISMATCH = "mismatch"
    LIKELY_SYNTHETIC = "likely_synthetic"
    INCONCLUSIVE = "inconclusive"


class NotEnoughSpeech(ValueError):
    """A recording holds too little (voiced) speech to embed or enrol."""


@runtime_checkable
class SpeakerModel(Protocol):
    """What the engine needs from a speaker model; see the module docstring for plugging one in."""

    name: str

    def embed(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """A fixed-length, L2-normalised speaker embedding."""
        ...

    def synthetic_score(self, samples: np.ndarray, sample_rate: int) -> float:
        """How machine-made the voice sounds, from 0 (natural) to 1 (synthetic)."""
        ...


@dataclass(frozen=True)
class Profile:
    """An enrolled voice: the mean embedding of the enrolment recordings."""

    embedding: np.ndarray
    model_name: str
    sample_count: int
    speech_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form, for a JSONField."""
        return {
            "embedding": [float(value) for value in self.embedding],
            "model_name": self.model_name,
            "sample_count": self.sample_count,
            "speech_seconds": self.speech_seconds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Profile":
        """The inverse of to_dict()."""
        return cls(
            embedding=np.asarray(data["embedding"], dtype=np.float64),
            model_name=data["model_name"],
            sample_count=int(data["sample_count"]),
            speech_seconds=float(data["speech_seconds"]),
        )


@dataclass(frozen=True)
class Analysis:
    """The result of analysing one sample; `similarity` and `synthetic_score` are None when not scored."""

    verdict: Verdict
    similarity: float | None
    synthetic_score: float | None
    details: dict[str, Any] = field(default_factory=dict)


def load_model(path: str | None = None) -> SpeakerModel:
    """Instantiate the model class at a dotted path ("package.module.ClassName"); the feature model by default."""
    if not path:
        return FeatureSpeakerModel()
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise ValueError(f"VOICEPRINT_MODEL must be a dotted path to a class, not {path!r}")
    model = getattr(importlib.import_module(module_name), class_name)()
    if not isinstance(model, SpeakerModel):
        raise TypeError(f"{path} does not implement SpeakerModel (name, embed, synthetic_score)")
    return model


def enroll(
    samples_list: list[np.ndarray], sample_rate: int = SAMPLE_RATE, model: SpeakerModel | None = None
) -> Profile:
    """Build a Profile from one or more recordings of the same person; NotEnoughSpeech if any is too short."""
    if not samples_list:
        raise ValueError("enrolment needs at least one recording")
    model = model or _default_model()
    embeddings, speech_total = [], 0.0
    for index, samples in enumerate(samples_list, start=1):
        speech = speech_seconds(samples, sample_rate)
        if speech < MIN_SPEECH_SECONDS:
            raise NotEnoughSpeech(
                f"enrolment recording {index} has {speech:.1f} s of speech; at least {MIN_SPEECH_SECONDS:g} s is needed"
            )
        embeddings.append(model.embed(samples, sample_rate))
        speech_total += speech
    mean = np.mean(embeddings, axis=0)
    return Profile(
        embedding=mean / np.linalg.norm(mean),
        model_name=model.name,
        sample_count=len(samples_list),
        speech_seconds=round(speech_total, 2),
    )


def analyse(
    profile_embedding: Profile | np.ndarray,
    samples: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    model: SpeakerModel | None = None,
) -> Analysis:
    """Compare a sample with an enrolled profile (or a bare embedding) and decide a verdict."""
    model = model or _default_model()
    if isinstance(profile_embedding, Profile):
        if profile_embedding.model_name != model.name:
            raise ValueError(
                f"the profile was enrolled with model {profile_embedding.model_name!r} but the sample is analysed "
                f"with {model.name!r}; embeddings of different models cannot be compared, re-enrol the customer"
            )
        reference = profile_embedding.embedding
    else:
        reference = np.asarray(profile_embedding, dtype=np.float64)

    speech = speech_seconds(samples, sample_rate)
    details: dict[str, Any] = {
        "model": model.name,
        "duration_seconds": round(len(samples) / sample_rate, 2),
        "speech_seconds": round(speech, 2),
        "thresholds": {
            "match": MATCH_THRESHOLD,
            "mismatch": MISMATCH_THRESHOLD,
            "synthetic": SYNTHETIC_THRESHOLD,
            "min_speech_seconds": MIN_SPEECH_SECONDS,
        },
    }
    if speech < MIN_SPEECH_SECONDS:
        details["reason"] = "too_little_speech"
        return Analysis(Verdict.INCONCLUSIVE, None, None, details)

    try:
        embedding = model.embed(samples, sample_rate)
        synthetic = float(model.synthetic_score(samples, sample_rate))
    except NotEnoughSpeech:
        details["reason"] = "too_little_voiced_speech"
        return Analysis(Verdict.INCONCLUSIVE, None, None, details)
    if embedding.shape != reference.shape:
        raise ValueError(f"profile embedding has shape {reference.shape}, the model produces {embedding.shape}")
    similarity = float(np.dot(embedding, reference) / (np.linalg.norm(embedding) * np.linalg.norm(reference)))
    if hasattr(model, "describe"):
        details["measurements"] = model.describe(samples, sample_rate)

    if synthetic >= SYNTHETIC_THRESHOLD:
        verdict, reason = Verdict.LIKELY_SYNTHETIC, "synthetic_voice"
    elif similarity >= MATCH_THRESHOLD:
        verdict, reason = Verdict.MATCH, "similar_voice"
    elif similarity < MISMATCH_THRESHOLD:
        verdict, reason = Verdict.MISMATCH, "different_voice"
    else:
        verdict, reason = Verdict.INCONCLUSIVE, "uncertain_similarity"
    details.update(reason=reason, similarity=round(similarity, 4), synthetic_score=round(synthetic, 4))
    return Analysis(verdict, similarity, synthetic, details)


def speech_seconds(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Seconds of voice activity (pauses and silence excluded), by frame energy."""
    samples = _at_model_rate(samples, sample_rate)
    return float(np.count_nonzero(_voice_activity(_frame_energy_db(samples)))) * HOP / SAMPLE_RATE


@functools.cache
def _default_model() -> SpeakerModel:
    return FeatureSpeakerModel()


def _at_model_rate(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    return np.asarray(resample(np.asarray(samples, dtype=np.float64), sample_rate), dtype=np.float32)


def _frames(samples: np.ndarray, width: int, hop: int = HOP, centre: int | None = None) -> np.ndarray:
    """Frames every `hop` samples as a strided view; sample `centre` of frame i (default its middle) is i * hop."""
    before = width // 2 if centre is None else centre
    padded = np.pad(samples, (before, width - before))
    count = 1 + len(samples) // hop
    return np.lib.stride_tricks.sliding_window_view(padded, width)[::hop][:count]


def _frame_energy_db(samples: np.ndarray) -> np.ndarray:
    frames = _frames(samples, _WINDOW)
    return 10.0 * np.log10(np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / _WINDOW + 1e-12)


def _voice_activity(energy_db: np.ndarray) -> np.ndarray:
    if len(energy_db) == 0:
        return np.zeros(0, dtype=bool)
    return energy_db > max(float(np.percentile(energy_db, 95)) - VAD_RANGE_DB, VAD_FLOOR_DBFS)


# ---- the feature model -----------------------------------------------------------------------

# Mel band limits: the telephone band, so that an 8 kHz phone recording and a 48 kHz
# studio one of the same person land in the same place.
_MEL_FMIN, _MEL_FMAX, _MEL_BANDS = 60.0, 3800.0, 30
_FFT_SIZE = 512
_CEPSTRA = 12  # c1..c12: the spectral envelope; higher ones mostly repeat the pitch
# Pitch (YIN, de Cheveigné & Kawahara 2002) between 60 and 400 Hz, on audio low-passed at
# 1 kHz, where the first harmonics are strong and breath noise is weak. After that filter
# half the sample rate loses nothing and halves the cost.
_F0_MIN, _F0_MAX = 60.0, 400.0
_PITCH_RATE = SAMPLE_RATE // 2
_PITCH_HOP = HOP // 2
_YIN_WINDOW = 200  # 25 ms
_YIN_THRESHOLD = 0.15
_VOICED_APERIODICITY = 0.25  # speech frames less periodic than this (0 periodic .. 1 noise) are unvoiced
_LOWPASS = signal.butter(4, 1000.0, fs=SAMPLE_RATE, output="sos")
_LAG_MIN = int(_PITCH_RATE / _F0_MAX)
_LAG_MAX = math.ceil(_PITCH_RATE / _F0_MIN)
_BLOCK_FRAMES = 1024  # frames per vectorised block: bounds memory on two-minute files
_MIN_VOICED_FRAMES = 50

# How much each statistic moves between two recordings of the same speaker (the unit in
# which differences are counted) and how much weight each block of statistics gets.
# Cepstral coefficients vary less the higher their index, roughly as 1/sqrt(n).
_N = np.arange(1, _CEPSTRA + 1)
_SPREAD = {
    "f0": np.array([1.5]),  # semitones: a person's median pitch moves by a semitone or two between sessions
    "mfcc_mean": 1.5 / np.sqrt(_N),
    "mfcc_std": 0.6 / np.sqrt(_N),
    "delta_std": 0.35 / _N**0.75,
}
_WEIGHT = {"f0": 1.0, "mfcc_mean": 1.0, "mfcc_std": 0.5, "delta_std": 0.5}
# The similarity of two recordings is exp(-d^2 / (2 * _KERNEL_WIDTH)), d^2 being the
# weighted mean squared difference in units of _SPREAD.
_KERNEL_WIDTH = 6.0
# Random Fourier features (Rahimi & Recht 2007): cosine similarity of these vectors
# approximates that Gaussian kernel, so the embedding works with the same cosine
# arithmetic as a neural one. The seed fixes the projection: changing it, or any
# constant above, changes every embedding, so bump FeatureSpeakerModel.name with it.
_EMBEDDING_SIZE = 512
_PROJECTION_SEED = 1729


@dataclass
class _Frames:
    mfcc: np.ndarray  # (frames, _CEPSTRA)
    energy_db: np.ndarray
    active: np.ndarray
    f0: np.ndarray
    aperiodicity: np.ndarray
    voiced: np.ndarray


class FeatureSpeakerModel:
    """Training-free speaker model: MFCC and pitch statistics, plus three synthetic-voice heuristics.

    Embedding: over voiced frames, the mean and spread of 12 MFCCs (30 mel bands, 60 Hz to
    3.8 kHz), the spread of their deltas over all speech frames, and the median pitch in
    semitones. Each statistic is counted in units of its typical same-speaker variation
    (_SPREAD), and mapped through a fixed random Fourier projection so that the cosine
    similarity of two embeddings approximates exp(-d^2 / 2w), d being that standardised
    distance. It separates voices that differ in pitch or vocal tract length; voices
    within a couple of semitones and a few percent of vocal tract length are confused,
    and a different microphone or room moves the spectral statistics. The spreads were
    set on synthetic speech: re-check them on real enrolment recordings.

    Synthetic score: natural voices wobble. It is a weighted vote of
      - pitch jitter: frame-to-frame pitch deviation from a straight line, in semitones
        (natural speech is around 0.03; pitch contours drawn by a synthesiser are smooth);
      - harmonics-to-noise ratio below 1 kHz (natural voices carry breath noise, around
        10-15 dB in running speech; vocoded or formant-synthesised voices are cleaner);
      - shimmer: frame-to-frame loudness deviation from a straight line, in dB.
    This is a heuristic: it flags synthesis whose pitch is drawn as a smooth line and
    whose voicing carries no breath. It does not flag espeak-ng (formant synthesis that
    adds pitch flutter on purpose scores about 0.03), nor modern neural voice clones,
    which reproduce jitter and breath. A trained anti-spoofing model is the way to catch
    those.
    """

    name = "feature-v1"

    def __init__(self) -> None:
        self._mel = mel_filterbank(
            sr=SAMPLE_RATE, n_fft=_FFT_SIZE, n_mels=_MEL_BANDS, fmin=_MEL_FMIN, fmax=_MEL_FMAX
        ).astype(np.float32)
        self._window = np.hamming(_WINDOW).astype(np.float32)
        rng = np.random.default_rng(_PROJECTION_SEED)
        dimensions = sum(len(spread) for spread in _SPREAD.values())
        self._projection = rng.standard_normal((_EMBEDDING_SIZE, dimensions))
        self._phase = rng.uniform(0.0, 2.0 * np.pi, _EMBEDDING_SIZE)
        self._scale = np.concatenate(
            [spread * math.sqrt(_KERNEL_WIDTH * len(spread) / _WEIGHT[block]) for block, spread in _SPREAD.items()]
        )
        self._cache: tuple[bytes, _Frames] | None = None

    def embed(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """A 512-dimensional unit vector; raises NotEnoughSpeech without enough voiced frames."""
        features = self.statistics(samples, sample_rate)
        standardised = np.concatenate([features[block] for block in _SPREAD]) / self._scale
        embedding = np.cos(self._projection @ standardised + self._phase)
        return embedding / np.linalg.norm(embedding)

    def statistics(self, samples: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
        """The per-recording statistics the embedding is made of, by block."""
        frames = self._analyse(samples, sample_rate)
        voiced_mfcc = frames.mfcc[frames.voiced]
        deltas = (frames.mfcc[2:] - frames.mfcc[:-2]) / 2.0
        semitones = 12.0 * np.log2(frames.f0[frames.voiced] / 100.0)
        return {
            "f0": np.array([np.median(semitones)]),
            "mfcc_mean": voiced_mfcc.mean(axis=0),
            "mfcc_std": voiced_mfcc.std(axis=0),
            "delta_std": deltas[frames.active[1:-1]].std(axis=0),
        }

    def synthetic_score(self, samples: np.ndarray, sample_rate: int) -> float:
        """Weighted vote of the jitter, HNR and shimmer heuristics, in [0, 1]."""
        measured = self.describe(samples, sample_rate)
        jitter = _falling(math.log(max(measured["jitter_semitones"], 1e-6)), math.log(0.01), 0.35)
        hnr = _rising(measured["hnr_db"], 20.0, 1.5)
        shimmer = _falling(math.log(max(measured["shimmer_db"], 1e-6)), math.log(0.15), 0.3)
        return round(0.45 * jitter + 0.35 * hnr + 0.2 * shimmer, 4)

    def describe(self, samples: np.ndarray, sample_rate: int) -> dict[str, float]:
        """JSON-serialisable voice measurements behind the scores."""
        frames = self._analyse(samples, sample_rate)
        jitter, shimmer = [], []
        for start, stop in _runs(frames.voiced, minimum=3):
            semitones = 12.0 * np.log2(frames.f0[start:stop])
            jitter.append(np.abs(semitones[1:-1] - (semitones[:-2] + semitones[2:]) / 2.0))
            level = frames.energy_db[start:stop]
            shimmer.append(np.abs(level[1:-1] - (level[:-2] + level[2:]) / 2.0))
        aperiodicity = np.clip(frames.aperiodicity[frames.voiced], 1e-4, 1.0 - 1e-4)
        hnr = 10.0 * np.log10((1.0 - aperiodicity) / aperiodicity)
        return {
            "f0_median_hz": round(float(np.median(frames.f0[frames.voiced])), 1),
            "voiced_seconds": round(float(np.count_nonzero(frames.voiced)) * HOP / SAMPLE_RATE, 2),
            "jitter_semitones": round(float(np.median(np.concatenate(jitter))), 5) if jitter else 0.0,
            "shimmer_db": round(float(np.median(np.concatenate(shimmer))), 4) if shimmer else 0.0,
            "hnr_db": round(float(np.median(hnr)), 2),
        }

    def _analyse(self, samples: np.ndarray, sample_rate: int) -> _Frames:
        # embed(), synthetic_score() and describe() are called on the same samples in turn:
        # keep the last frame analysis rather than compute it three times.
        key = hashlib.blake2b(np.ascontiguousarray(samples).tobytes(), digest_size=16).digest() + bytes(
            str(sample_rate), "ascii"
        )
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        frames = self._analyse_uncached(_at_model_rate(samples, sample_rate))
        if np.count_nonzero(frames.voiced) < _MIN_VOICED_FRAMES:
            raise NotEnoughSpeech(
                f"{np.count_nonzero(frames.voiced) * HOP / SAMPLE_RATE:.2f} s of voiced speech; "
                f"at least {_MIN_VOICED_FRAMES * HOP / SAMPLE_RATE:.2f} s is needed"
            )
        self._cache = (key, frames)
        return frames

    def _analyse_uncached(self, samples: np.ndarray) -> _Frames:
        energy_db = _frame_energy_db(samples)
        active = _voice_activity(energy_db)
        spectral = _frames(samples, _WINDOW)
        mfcc = np.concatenate(
            [self._mfcc(spectral[start : start + _BLOCK_FRAMES]) for start in range(0, len(spectral), _BLOCK_FRAMES)]
        )
        # YIN compares its first _YIN_WINDOW samples with later ones: centre those on the frame.
        lowpassed = signal.sosfilt(_LOWPASS, samples)[::2]
        periodic = _frames(lowpassed, _YIN_WINDOW + _LAG_MAX + 1, hop=_PITCH_HOP, centre=_YIN_WINDOW // 2)
        f0 = np.full(len(spectral), np.nan)
        aperiodicity = np.ones(len(spectral))
        speech = np.flatnonzero(active)  # pauses cannot be voiced: skip them
        for start in range(0, len(speech), _BLOCK_FRAMES):
            block = speech[start : start + _BLOCK_FRAMES]
            f0[block], aperiodicity[block] = _yin(periodic[block])
        return _Frames(
            mfcc=mfcc,
            energy_db=energy_db,
            active=active,
            f0=f0,
            aperiodicity=aperiodicity,
            voiced=active & (aperiodicity < _VOICED_APERIODICITY),
        )

    def _mfcc(self, frames: np.ndarray) -> np.ndarray:
        power = np.abs(scipy.fft.rfft(frames * self._window, _FFT_SIZE)) ** 2
        log_mel = np.log(power @ self._mel.T + 1e-8)
        return scipy.fft.dct(log_mel, type=2, norm="ortho", axis=1)[:, 1 : _CEPSTRA + 1]


def _yin(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame pitch (Hz) and aperiodicity (0 periodic .. 1 noise) by YIN, vectorised over frames."""
    frames = frames - frames.mean(axis=1, keepdims=True)
    size = 1 << (frames.shape[1] - 1).bit_length()
    count = len(frames)
    # Difference function d(tau) = E(0) + E(tau) - 2 r(tau) over a _YIN_WINDOW-sample window.
    correlation = scipy.fft.irfft(
        scipy.fft.rfft(frames, size) * np.conj(scipy.fft.rfft(frames[:, :_YIN_WINDOW], size)), size
    )[:, : _LAG_MAX + 2]
    cumulative = np.cumsum(np.pad(frames**2, ((0, 0), (1, 0))), axis=1)
    energy = cumulative[:, _YIN_WINDOW : _YIN_WINDOW + _LAG_MAX + 2] - cumulative[:, : _LAG_MAX + 2]
    difference = np.maximum(energy[:, :1] + energy - 2.0 * correlation, 0.0)
    difference[:, 0] = 0.0
    # Cumulative mean normalisation: d'(tau) = d(tau) * tau / sum(d(1..tau)).
    normalised = np.ones_like(difference)
    running = np.cumsum(difference[:, 1:], axis=1)
    normalised[:, 1:] = difference[:, 1:] * np.arange(1, difference.shape[1]) / np.maximum(running, 1e-12)

    # The first dip below the threshold, followed down to its local minimum; the global
    # minimum where nothing dips below it. Taking the first dip avoids octave-down errors.
    searched = normalised[:, _LAG_MIN - 1 : _LAG_MAX + 2]
    middle = searched[:, 1:-1]
    minima = (middle <= searched[:, :-2]) & (middle <= searched[:, 2:])
    below = middle < _YIN_THRESHOLD
    first_below = np.where(below.any(axis=1), np.argmax(below, axis=1), middle.shape[1])
    candidates = minima & (np.arange(middle.shape[1]) >= first_below[:, None])
    index = np.where(candidates.any(axis=1), np.argmax(candidates, axis=1), np.argmin(middle, axis=1))

    rows = np.arange(count)
    left, centre, right = searched[rows, index], searched[rows, index + 1], searched[rows, index + 2]
    curvature = left - 2.0 * centre + right
    offset = np.clip(np.where(curvature > 1e-12, 0.5 * (left - right) / np.maximum(curvature, 1e-12), 0.0), -1, 1)
    lag = _LAG_MIN + index
    # Aperiodicity is the difference relative to the energies, read at the interpolated
    # minimum: at a whole-sample lag even a perfectly periodic voice would look noisy.
    ratio = difference / np.maximum(energy[:, :1] + energy, 1e-12)
    before, at, after = ratio[rows, lag - 1], ratio[rows, lag], ratio[rows, lag + 1]
    aperiodicity = at - 0.25 * (before - after) * offset
    return _PITCH_RATE / (lag + offset), np.clip(aperiodicity, 0.0, 1.0)


def _runs(mask: np.ndarray, minimum: int) -> list[tuple[int, int]]:
    """(start, stop) of each run of True at least `minimum` long."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(start, stop) for start, stop in zip(starts, stops, strict=True) if stop - start >= minimum]


def _rising(value: float, midpoint: float, width: float) -> float:
    return 1.0 / (1.0 + math.exp(-(value - midpoint) / width))


def _falling(value: float, midpoint: float, width: float) -> float:
    return 1.0 - _rising(value, midpoint, width)
