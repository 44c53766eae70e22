"""Speech-like test audio: a source-filter voice synthesiser and a WAV writer for every format we read.

A "speaker" is a pitch range plus a vocal tract (formant scale and per-formant quirks), a
voice quality (jitter, shimmer, breathiness) and a speaking rate. An utterance is a seeded
sequence of syllables: a jittered glottal pulse train through formant resonators for the
vowel, an optional noise burst for the consonant, a syllable-shaped amplitude envelope,
pauses between words and a falling pitch contour per phrase. Nothing here is fitted to
the engine: the vowel formants are the Peterson & Barney (1952) averages for men.
"""

import struct
from dataclasses import dataclass, replace

import numpy as np
from scipy import signal

# F1-F3 averages for adult male speakers of American English (Peterson & Barney 1952);
# F4 is set near the usual 3.4 kHz of a 17 cm vocal tract.
VOWELS = {
    "i": (270, 2290, 3010),
    "ɪ": (390, 1990, 2550),
    "ɛ": (530, 1840, 2480),
    "æ": (660, 1720, 2410),
    "ɑ": (730, 1090, 2440),
    "ɔ": (570, 840, 2410),
    "ʊ": (440, 1020, 2240),
    "u": (300, 870, 2240),
    "ʌ": (640, 1190, 2390),
    "ɝ": (490, 1350, 1690),
}
F4 = 3400.0
SAMPLE_RATE = 16000
BANDWIDTHS = (70.0, 100.0, 150.0, 220.0)


@dataclass(frozen=True)
class Speaker:
    """The parameters that make one synthetic voice recognisable."""

    name: str
    f0_hz: float  # median pitch
    f0_spread_semitones: float = 2.5  # how far intonation moves around the median
    formant_scale: float = 1.0  # shorter vocal tract -> higher formants (women ~1.15, children ~1.3)
    formant_quirks: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)  # per-formant individual offsets
    jitter: float = 0.01  # cycle-to-cycle period variation (relative std)
    shimmer: float = 0.06  # cycle-to-cycle amplitude variation (relative std)
    breathiness: float = 0.1  # aspiration noise RMS relative to the shaped pulse train
    tilt: float = 0.93  # glottal low-pass pole; higher is a darker, softer voice
    syllables_per_second: float = 4.5


# Two adult men, two adult women, one child: different pitch and vocal tracts.
ALEX = Speaker("alex", f0_hz=110, formant_scale=1.0, formant_quirks=(1.0, 0.97, 1.04, 1.02), tilt=0.94)
BORIS = Speaker("boris", f0_hz=95, formant_scale=0.93, formant_quirks=(1.03, 1.0, 0.95, 0.97), tilt=0.95)
CARMEN = Speaker("carmen", f0_hz=210, formant_scale=1.16, formant_quirks=(0.98, 1.03, 1.0, 1.05), tilt=0.91)
DANA = Speaker("dana", f0_hz=185, formant_scale=1.12, formant_quirks=(1.04, 0.96, 1.03, 0.98), tilt=0.92)
ELI = Speaker("eli", f0_hz=270, formant_scale=1.3, formant_quirks=(1.0, 1.0, 1.0, 1.0), tilt=0.9)
SPEAKERS = (ALEX, BORIS, CARMEN, DANA, ELI)


def robotic(speaker: Speaker) -> Speaker:
    """The same vocal tract driven the way crude speech synthesis does: no jitter, shimmer or breath."""
    return replace(speaker, name=f"{speaker.name}-robotic", jitter=0.0, shimmer=0.0, breathiness=0.0)


def utterance(speaker: Speaker, seconds: float, seed: int) -> np.ndarray:
    """Float32 16 kHz speech-like audio of `seconds` by `speaker`, peak-normalised to 0.5; same seed, same audio.

    The voice is defined at 16 kHz (the digital glottal and lip filters depend on the
    rate): for another rate, resample the result, as a recorder running at that rate would.
    """
    sample_rate = SAMPLE_RATE
    rng = np.random.default_rng(seed)
    # Nobody sounds the same twice: each recording session shifts the voice's pitch and pace
    # a little, and each microphone colours it.
    session_f0 = speaker.f0_hz * 2.0 ** (rng.normal(0.0, 0.7) / 12.0)
    session_rate = speaker.syllables_per_second * rng.uniform(0.85, 1.15)
    microphone_tilt = rng.uniform(-0.3, 0.3)
    pieces: list[np.ndarray] = [_silence(rng.uniform(0.1, 0.3), sample_rate)]
    total = len(pieces[0])
    target = int(seconds * sample_rate)
    vowels = list(VOWELS.values())
    while total < target:
        phrase_syllables = int(rng.integers(5, 12))
        for index in range(phrase_syllables):
            # Declination: pitch falls across a phrase, with a random accent on some syllables.
            progress = index / max(phrase_syllables - 1, 1)
            semitones = speaker.f0_spread_semitones * (1.0 - 2.0 * progress) * 0.6
            semitones += rng.normal(0.0, speaker.f0_spread_semitones * 0.4)
            f0 = session_f0 * 2.0 ** (semitones / 12.0)
            formants = _speaker_formants(speaker, vowels[int(rng.integers(len(vowels)))])
            nucleus = rng.uniform(0.6, 1.2) / session_rate
            syllable = _syllable(speaker, f0, formants, nucleus, rng, sample_rate)
            pieces.append(syllable)
            total += len(syllable)
            if rng.random() < 0.35:  # word boundary
                gap = _silence(rng.uniform(0.04, 0.15), sample_rate)
                pieces.append(gap)
                total += len(gap)
        gap = _silence(rng.uniform(0.25, 0.5), sample_rate)
        pieces.append(gap)
        total += len(gap)
    audio = np.concatenate(pieces)[:target]
    # Up to about 5 dB of treble roll-off (positive) or lift (negative) across the band.
    audio = signal.lfilter([1.0, microphone_tilt], [1.0], audio)
    audio = audio + rng.normal(0.0, 1e-4, len(audio))  # a quiet room, not digital silence
    return (0.5 * audio / np.max(np.abs(audio))).astype(np.float32)


def _speaker_formants(speaker: Speaker, vowel: tuple[int, int, int]) -> np.ndarray:
    base = np.array([*vowel, F4], dtype=float)
    return base * speaker.formant_scale * np.array(speaker.formant_quirks)


def _silence(seconds: float, sample_rate: int) -> np.ndarray:
    return np.zeros(int(seconds * sample_rate))


def _syllable(
    speaker: Speaker, f0: float, formants: np.ndarray, seconds: float, rng: np.random.Generator, sample_rate: int
) -> np.ndarray:
    parts = []
    if rng.random() < 0.6:
        parts.append(_consonant(rng, sample_rate))
    n = int(seconds * sample_rate)
    source = _glottal_source(speaker, f0, n, rng, sample_rate)
    voiced = _formant_filter(source, formants, sample_rate)
    voiced = np.diff(voiced, prepend=0.0)  # lip radiation
    parts.append(voiced * _envelope(n, sample_rate))
    return np.concatenate(parts)


def _glottal_source(speaker: Speaker, f0: float, n: int, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    source = np.zeros(n + 2)
    period = sample_rate / f0
    position = rng.uniform(0, period)
    # A slow drift inside the syllable so that pitch is never a flat line, even without jitter.
    drift = rng.normal(0.0, 0.02)
    while position < n:
        progress = position / n
        this_period = period * (1.0 + drift * (progress - 0.5)) * (1.0 + speaker.jitter * rng.standard_normal())
        amplitude = 1.0 + speaker.shimmer * rng.standard_normal()
        # Split each pulse between two samples: a rounded pulse position would add its own jitter.
        whole = int(position)
        fraction = position - whole
        source[whole] += amplitude * (1.0 - fraction)
        source[whole + 1] += amplitude * fraction
        position += this_period
    source = source[:n]
    # Glottal pulse shape: two one-pole low-passes give the usual -12 dB/octave source slope.
    shaped = signal.lfilter([1.0 - speaker.tilt], [1.0, -speaker.tilt], source)
    shaped = signal.lfilter([1.0 - speaker.tilt], [1.0, -speaker.tilt], shaped)
    shaped /= np.sqrt(np.mean(shaped**2)) + 1e-12
    if speaker.breathiness:
        shaped += speaker.breathiness * rng.standard_normal(n)
    return shaped


def _formant_filter(source: np.ndarray, formants: np.ndarray, sample_rate: int) -> np.ndarray:
    out = source
    for frequency, bandwidth in zip(formants, BANDWIDTHS, strict=True):
        if frequency >= sample_rate / 2 - bandwidth:
            continue
        radius = np.exp(-np.pi * bandwidth / sample_rate)
        theta = 2 * np.pi * frequency / sample_rate
        a = [1.0, -2.0 * radius * np.cos(theta), radius**2]
        out = signal.lfilter([sum(a)], a, out)  # unity gain at DC, as in a cascade formant synthesiser
    return out


def _consonant(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    n = int(rng.uniform(0.04, 0.1) * sample_rate)
    centre = rng.uniform(2500, 5500)
    low, high = centre * 0.7, min(centre * 1.3, sample_rate / 2 * 0.95)
    if low >= high:
        return np.zeros(n)
    sos = signal.butter(2, [low, high], btype="bandpass", fs=sample_rate, output="sos")
    burst = signal.sosfilt(sos, rng.standard_normal(n)) * 0.3
    return burst * np.hanning(n)


def _envelope(n: int, sample_rate: int) -> np.ndarray:
    ramp = min(int(0.03 * sample_rate), n // 2)
    envelope = np.ones(n)
    rise = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp))
    envelope[:ramp] = rise
    envelope[n - ramp :] = rise[::-1]
    return envelope


def sine_mix(seconds: float, sample_rate: int, amplitude: float = 0.5) -> np.ndarray:
    """Three tones below 3.5 kHz: survives every sample rate we accept, so a decoded file can be checked exactly."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    mix = np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 1000 * t + 1.0) + 0.25 * np.sin(2 * np.pi * 3100 * t)
    return (amplitude * mix / 1.75).astype(np.float64)


# ---- WAV writer -------------------------------------------------------------------------------

PCM = 1
IEEE_FLOAT = 3
EXTENSIBLE = 0xFFFE
_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"

# name -> (format tag, bits per sample)
FORMATS = {
    "pcm_u8": (PCM, 8),
    "pcm_16": (PCM, 16),
    "pcm_24": (PCM, 24),
    "pcm_32": (PCM, 32),
    "float_32": (IEEE_FLOAT, 32),
    "float_64": (IEEE_FLOAT, 64),
}


def wav_bytes(samples: np.ndarray, sample_rate: int, fmt: str = "pcm_16", extensible: bool = False) -> bytes:
    """Encode float samples in [-1, 1] (shape (n,) or (n, channels)) as a WAV file in the named format."""
    frames = samples if samples.ndim == 2 else samples[:, None]
    channels = frames.shape[1]
    tag, bits = FORMATS[fmt]
    data = _encode(frames, tag, bits)
    block_align = channels * bits // 8
    if extensible:
        fmt_body = struct.pack(
            "<HHIIHHHHI16s",
            EXTENSIBLE,
            channels,
            sample_rate,
            sample_rate * block_align,
            block_align,
            bits,
            22,
            bits,
            (1 << channels) - 1,
            struct.pack("<H", tag) + _GUID_TAIL,
        )
    else:
        fmt_body = struct.pack("<HHIIHH", tag, channels, sample_rate, sample_rate * block_align, block_align, bits)
    return riff([(b"fmt ", fmt_body), (b"data", data)])


def riff(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """Assemble a RIFF/WAVE file from (chunk id, body) pairs, padding odd-sized bodies as the format requires."""
    body = b"WAVE"
    for chunk_id, chunk_body in chunks:
        body += chunk_id + struct.pack("<I", len(chunk_body)) + chunk_body
        if len(chunk_body) % 2:
            body += b"\x00"
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _encode(frames: np.ndarray, tag: int, bits: int) -> bytes:
    clipped = np.clip(frames, -1.0, 1.0)
    if tag == IEEE_FLOAT:
        return clipped.astype("<f4" if bits == 32 else "<f8").tobytes()
    if bits == 8:
        return np.round(clipped * 127 + 128).astype(np.uint8).tobytes()
    scale = 2 ** (bits - 1) - 1
    ints = np.round(clipped * scale).astype("<i4")
    if bits == 16:
        return ints.astype("<i2").tobytes()
    if bits == 24:
        return ints.reshape(-1, 1).view(np.uint8)[:, :3].tobytes()
    return ints.tobytes()


def sustained_vowel(f0: float, seconds: float, vowel: str = "ɑ") -> np.ndarray:
    """A steady vowel at exactly `f0` Hz (no jitter, no intonation): a reference for pitch measurement."""
    n = int(seconds * SAMPLE_RATE)
    steady = replace(ALEX, jitter=0.0, shimmer=0.0, breathiness=0.0)
    rng = np.random.default_rng(0)
    source = _glottal_source(steady, f0, n, rng, SAMPLE_RATE)
    voiced = np.diff(_formant_filter(source, _speaker_formants(steady, VOWELS[vowel]), SAMPLE_RATE), prepend=0.0)
    return (0.5 * voiced / np.max(np.abs(voiced))).astype(np.float32)
