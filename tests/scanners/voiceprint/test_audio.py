import io
import struct

import numpy as np
import pytest

from scanners.voiceprint.audio import MAX_DURATION_SECONDS, SAMPLE_RATE, AudioRejected, read_wav
from tests.scanners.voiceprint import synth

RATES = [8000, 11025, 16000, 22050, 44100, 48000]
SECONDS = 1.5
# Worst-case sample error after decoding and resampling: 8-bit files carry 1/128 of
# quantisation error, the rest only the resampling filter's ripple.
TOLERANCE = {"pcm_u8": 0.02, "pcm_16": 0.005, "pcm_24": 0.005, "pcm_32": 0.005, "float_32": 0.005, "float_64": 0.005}


def _expected() -> np.ndarray:
    return synth.sine_mix(SECONDS, SAMPLE_RATE)


def _assert_decodes_to(audio, expected: np.ndarray, tolerance: float) -> None:
    assert audio.sample_rate == SAMPLE_RATE
    assert audio.duration == pytest.approx(SECONDS, abs=1e-3)  # 1.5 s is 16537.5 frames at 11.025 kHz
    assert audio.samples.dtype == np.float32
    assert abs(len(audio.samples) - len(expected)) <= 1
    # The first and last few milliseconds hold the resampling filter's edge transient.
    middle = slice(200, len(expected) - 200)
    assert np.max(np.abs(audio.samples[middle] - expected[middle])) < tolerance


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("fmt", list(synth.FORMATS))
def test_every_format_and_rate_decodes_to_the_same_16khz_signal(fmt, rate):
    audio = read_wav(synth.wav_bytes(synth.sine_mix(SECONDS, rate), rate, fmt))

    _assert_decodes_to(audio, _expected(), TOLERANCE[fmt])
    assert (audio.source_rate, audio.channels, audio.encoding) == (rate, 1, fmt)


@pytest.mark.parametrize("rate", [8000, 44100])
@pytest.mark.parametrize("fmt", list(synth.FORMATS))
def test_stereo_and_extensible_headers_mix_to_mono(fmt, rate):
    left = synth.sine_mix(SECONDS, rate)
    stereo = np.stack([left, 0.5 * left], axis=1)

    audio = read_wav(synth.wav_bytes(stereo, rate, fmt, extensible=True))

    _assert_decodes_to(audio, 0.75 * _expected(), TOLERANCE[fmt])
    assert audio.channels == 2


def test_reads_file_objects_and_skips_unknown_chunks(tmp_path):
    plain = synth.wav_bytes(synth.sine_mix(SECONDS, 22050), 22050, "pcm_24")
    fmt_chunk, data_chunk = _chunks(plain)
    # An odd-sized LIST chunk (padded to even length) between fmt and data, as taggers write.
    with_metadata = synth.riff([fmt_chunk, (b"LIST", b"INFOISFT\x05\x00\x00\x00Lavf\x00"), data_chunk])
    path = tmp_path / "sample.wav"
    path.write_bytes(with_metadata)

    with path.open("rb") as handle:
        from_file = read_wav(handle)

    _assert_decodes_to(from_file, _expected(), 0.005)
    np.testing.assert_array_equal(from_file.samples, read_wav(io.BytesIO(plain)).samples)


def test_float_files_past_full_scale_are_clipped():
    loud = synth.sine_mix(SECONDS, 16000, amplitude=3.0)
    body = loud.astype("<f4").tobytes()
    fmt_body = struct.pack("<HHIIHH", synth.IEEE_FLOAT, 1, 16000, 64000, 4, 32)

    audio = read_wav(synth.riff([(b"fmt ", fmt_body), (b"data", body)]))

    assert audio.samples.max() == pytest.approx(1.0)
    assert audio.samples.min() == pytest.approx(-1.0)


def _chunks(wav: bytes) -> list[tuple[bytes, bytes]]:
    chunks, offset = [], 12
    while offset < len(wav):
        chunk_id, size = wav[offset : offset + 4], struct.unpack("<I", wav[offset + 4 : offset + 8])[0]
        chunks.append((chunk_id, wav[offset + 8 : offset + 8 + size]))
        offset += 8 + size + size % 2
    return chunks


def _speech_wav(seconds: float = 2.0, rate: int = 16000, fmt: str = "pcm_16") -> bytes:
    return synth.wav_bytes(synth.sine_mix(seconds, rate), rate, fmt)


def _fmt(tag: int, channels: int = 1, rate: int = 16000, bits: int = 16) -> bytes:
    block_align = channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, rate, rate * block_align, block_align, bits)


def _rejection(data: bytes, **kwargs) -> AudioRejected:
    with pytest.raises(AudioRejected) as caught:
        read_wav(data, **kwargs)
    return caught.value


@pytest.mark.parametrize(
    ("data", "reason", "words"),
    [
        (b"Just some text, certainly not audio at all.", "not_audio", "RIFF header"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(100), "not_audio", "RIFF header"),
        (b"RIFF\x24\x00\x00\x00AVI LIST" + bytes(40), "not_audio", "not WAVE"),
        (synth.riff([(b"data", bytes(100)), (b"fmt ", _fmt(synth.PCM))]), "not_audio", "before the fmt chunk"),
        (synth.riff([(b"fmt ", _fmt(synth.PCM)[:12]), (b"data", bytes(100))]), "not_audio", "fmt chunk"),
        (b"", "empty", "0 bytes"),
        (synth.riff([(b"fmt ", _fmt(synth.PCM)), (b"data", b"")]), "empty", "no samples"),
        (b"RIFF\x24\x00", "truncated", "RIFF header"),
        (_speech_wav()[:30], "truncated", "fmt chunk"),
        (_speech_wav()[:38], "truncated", "chunk header"),
        (_speech_wav()[:-1000], "truncated", "data chunk (63000 of 64000 bytes"),
        (synth.riff([(b"fmt ", _fmt(synth.PCM))]), "truncated", "before its data chunk"),
        (synth.riff([])[:12], "truncated", "fmt and data chunks"),
        (synth.riff([(b"fmt ", _fmt(0x0007, bits=8)), (b"data", bytes(1000))]), "unsupported", "µ-law"),
        (synth.riff([(b"fmt ", _fmt(0x0055)), (b"data", bytes(1000))]), "unsupported", "MP3"),
        (synth.riff([(b"fmt ", _fmt(synth.PCM, bits=12)), (b"data", bytes(1000))]), "unsupported", "12-bit PCM"),
        (synth.riff([(b"fmt ", _fmt(synth.PCM, rate=4000)), (b"data", bytes(1000))]), "unsupported", "4000 Hz"),
        (b"RIFX" + _speech_wav()[4:], "unsupported", "big-endian"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_bad_files_are_rejected_with_a_reason(data, reason, words):
    rejection = _rejection(data)

    assert rejection.reason_code == reason
    assert words in rejection.message


def test_silence_and_near_silence_are_rejected_but_quiet_speech_is_not():
    rng = np.random.default_rng(1)
    digital_silence = np.zeros(32000)
    hiss = rng.normal(0.0, 10 ** (-70 / 20), 32000)  # -70 dBFS
    quiet = synth.sine_mix(2.0, 16000) * 10 ** (-45 / 20) / 0.29  # about -45 dBFS RMS

    assert _rejection(synth.wav_bytes(digital_silence, 16000)).reason_code == "silent"
    assert _rejection(synth.wav_bytes(hiss, 16000, "float_32")).reason_code == "silent"
    assert _rejection(synth.wav_bytes(np.full(32000, 0.5), 16000)).reason_code == "silent"  # DC carries no sound
    assert read_wav(synth.wav_bytes(quiet, 16000, "float_32")).duration == pytest.approx(2.0)


def test_too_long_is_decided_from_the_header_before_reading_samples():
    fmt_body = _fmt(synth.PCM, rate=8000)
    declared = int((MAX_DURATION_SECONDS + 1) * 8000 * 2)
    header_only = synth.riff([(b"fmt ", fmt_body)]) + b"data" + struct.pack("<I", declared)

    rejection = _rejection(header_only)

    assert rejection.reason_code == "too_long"
    assert "121.0 s" in rejection.message


def test_max_duration_is_a_parameter():
    three_seconds = _speech_wav(3.0)

    assert _rejection(three_seconds, max_duration=2.5).reason_code == "too_long"
    assert read_wav(three_seconds, max_duration=3.0).duration == pytest.approx(3.0)


def test_rejection_carries_code_and_message():
    error = AudioRejected("silent", "nothing to hear")

    assert (error.reason_code, error.message, str(error)) == ("silent", "nothing to hear", "silent: nothing to hear")
    with pytest.raises(ValueError, match="unknown reason code"):
        AudioRejected("loud", "too loud")
