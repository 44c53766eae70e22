"""Read an uploaded WAV file into 16 kHz mono float32 samples, or reject it with a reason code.

Accepted: RIFF/WAVE with integer PCM (8-bit unsigned, 16, 24 or 32-bit signed) or IEEE
float (32 or 64-bit), plain or WAVE_FORMAT_EXTENSIBLE headers, any number of channels
(mixed to mono by averaging), sample rates from 8 kHz to 192 kHz (resampled to 16 kHz with
scipy's polyphase filter).

The RIFF chunks are walked here rather than by `wave` or `scipy.io.wavfile`: `wave` reads
neither float nor 24-bit extensible files, and `scipy.io.wavfile` answers a file cut
short with a warning and fewer samples, or a generic ValueError, depending on the sample
width. Walking the chunks ourselves lets every cut be reported as `truncated` and lets
an over-long recording be refused from its header, before its samples are read.
"""

import io
import math
import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from scipy import signal

SAMPLE_RATE = 16000
MAX_DURATION_SECONDS = 120.0
# Below -60 dBFS RMS (1.0 = full scale) a recording holds nothing but hiss: a 16-bit
# file's dither floor is near -96 dBFS, quiet speech on a phone sits around -40 to -30.
SILENCE_DBFS = -60.0
MIN_SOURCE_RATE = 8000
MAX_SOURCE_RATE = 192000
MAX_CHANNELS = 8

_PCM = 0x0001
_IEEE_FLOAT = 0x0003
_EXTENSIBLE = 0xFFFE
# Every WAVE_FORMAT_EXTENSIBLE sub-format GUID is the 2-byte format tag followed by this.
_KSDATAFORMAT_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
_CODEC_NAMES = {
    0x0002: "Microsoft ADPCM",
    0x0006: "A-law",
    0x0007: "µ-law",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0055: "MP3",
    0x00FF: "AAC",
}
_SKIP_BLOCK = 1 << 20


class AudioRejected(Exception):
    """An upload that cannot be analysed; `reason_code` is stable, `message` is for people."""

    REASON_CODES = ("not_audio", "truncated", "empty", "silent", "too_long", "unsupported")

    def __init__(self, reason_code: str, message: str):
        if reason_code not in self.REASON_CODES:
            raise ValueError(f"unknown reason code {reason_code!r}")
        super().__init__(f"{reason_code}: {message}")
        self.reason_code = reason_code
        self.message = message


@dataclass(frozen=True)
class Audio:
    """Decoded audio: float32 mono samples in [-1, 1] at `sample_rate`, and what the file held."""

    samples: np.ndarray
    sample_rate: int
    duration: float  # seconds, from the file's own frame count and rate
    source_rate: int
    channels: int
    encoding: str  # "pcm_16", "float_32", ...


@dataclass(frozen=True)
class _Format:
    tag: int
    channels: int
    rate: int
    bits: int
    block_align: int

    @property
    def encoding(self) -> str:
        return f"float_{self.bits}" if self.tag == _IEEE_FLOAT else ("pcm_u8" if self.bits == 8 else f"pcm_{self.bits}")


def read_wav(source: bytes | bytearray | memoryview | BinaryIO, max_duration: float = MAX_DURATION_SECONDS) -> Audio:
    """Decode a WAV file (bytes or a binary file object) to 16 kHz mono, raising AudioRejected if unusable."""
    stream = io.BytesIO(source) if isinstance(source, bytes | bytearray | memoryview) else source
    fmt, data = _read_chunks(stream, max_duration)
    frames = _decode(data, fmt)
    mono = frames.mean(axis=1, dtype=np.float64) if fmt.channels > 1 else frames[:, 0].astype(np.float64)

    rms = float(np.sqrt(np.mean((mono - mono.mean()) ** 2)))
    level = 20 * math.log10(rms) if rms > 0 else -math.inf
    if level < SILENCE_DBFS:
        raise AudioRejected("silent", f"the recording is silent ({level:.1f} dBFS RMS, below {SILENCE_DBFS:.0f} dBFS)")

    samples = np.clip(resample(mono, fmt.rate), -1.0, 1.0).astype(np.float32)
    return Audio(
        samples=samples,
        sample_rate=SAMPLE_RATE,
        duration=len(frames) / fmt.rate,
        source_rate=fmt.rate,
        channels=fmt.channels,
        encoding=fmt.encoding,
    )


def resample(samples: np.ndarray, source_rate: int, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample with scipy's polyphase filter (anti-aliased); the same array if the rates already agree."""
    if source_rate == target_rate:
        return samples
    divisor = math.gcd(target_rate, source_rate)
    return signal.resample_poly(samples, target_rate // divisor, source_rate // divisor)


def _read_chunks(stream: BinaryIO, max_duration: float) -> tuple[_Format, bytes]:
    header = stream.read(12)
    if not header:
        raise AudioRejected("empty", "the file is empty (0 bytes)")
    if header[:4] in (b"RIFX", b"RF64"):
        raise AudioRejected("unsupported", f"{header[:4].decode()} files (big-endian or 64-bit RIFF) are not read")
    if not header.startswith(b"RIFF"[: len(header)]):
        raise AudioRejected("not_audio", "not a WAV file: it does not start with a RIFF header")
    if len(header) < 12:
        raise AudioRejected("truncated", f"the file ends inside its RIFF header ({len(header)} of 12 bytes)")
    if header[8:12] != b"WAVE":
        raise AudioRejected("not_audio", f"a RIFF file of type {header[8:12]!r}, not WAVE")

    fmt = None
    while True:
        chunk_header = stream.read(8)
        if not chunk_header:
            missing = "fmt and data chunks" if fmt is None else "data chunk"
            raise AudioRejected("truncated", f"the file ends before its {missing}")
        if len(chunk_header) < 8:
            raise AudioRejected("truncated", "the file ends inside a chunk header")
        chunk_id, size = chunk_header[:4], struct.unpack("<I", chunk_header[4:])[0]
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(_read_exactly(stream, size, "fmt chunk"))
            _skip(stream, size % 2)
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioRejected("not_audio", "malformed WAV: the data chunk comes before the fmt chunk")
            frame_count = size // fmt.block_align
            if frame_count == 0:
                raise AudioRejected("empty", "the recording holds no samples")
            duration = frame_count / fmt.rate
            if duration > max_duration:
                raise AudioRejected(
                    "too_long", f"the recording lasts {duration:.1f} s; at most {max_duration:g} s is analysed"
                )
            return fmt, _read_exactly(stream, frame_count * fmt.block_align, "data chunk")
        else:
            _skip(stream, size + size % 2, what=f"{chunk_id!r} chunk")


def _parse_fmt(body: bytes) -> _Format:
    if len(body) < 16:
        raise AudioRejected("not_audio", f"malformed WAV: a {len(body)}-byte fmt chunk (at least 16 expected)")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == _EXTENSIBLE:
        if len(body) < 40:
            raise AudioRejected("not_audio", "malformed WAV: an extensible fmt chunk shorter than 40 bytes")
        sub_format = body[24:40]
        if sub_format[2:] != _KSDATAFORMAT_TAIL:
            raise AudioRejected("unsupported", "the extensible sub-format is not a standard audio format")
        tag = struct.unpack("<H", sub_format[:2])[0]

    if tag not in (_PCM, _IEEE_FLOAT):
        codec = _CODEC_NAMES.get(tag, f"format tag 0x{tag:04x}")
        raise AudioRejected("unsupported", f"{codec} audio is not supported; send uncompressed PCM or float WAV")
    valid_bits = (8, 16, 24, 32) if tag == _PCM else (32, 64)
    if bits not in valid_bits:
        kind = "PCM" if tag == _PCM else "float"
        raise AudioRejected("unsupported", f"{bits}-bit {kind} samples are not supported")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioRejected("unsupported", f"{channels} channels; 1 to {MAX_CHANNELS} are supported")
    if not MIN_SOURCE_RATE <= rate <= MAX_SOURCE_RATE:
        raise AudioRejected(
            "unsupported", f"a sample rate of {rate} Hz; {MIN_SOURCE_RATE} to {MAX_SOURCE_RATE} Hz is supported"
        )
    if block_align != channels * bits // 8:
        raise AudioRejected("not_audio", f"malformed WAV: block align {block_align} for {channels} x {bits}-bit")
    return _Format(tag=tag, channels=channels, rate=rate, bits=bits, block_align=block_align)


def _decode(data: bytes, fmt: _Format) -> np.ndarray:
    """Samples as float32 of shape (frames, channels), full scale at +-1."""
    if fmt.tag == _IEEE_FLOAT:
        values = np.frombuffer(data, dtype="<f4" if fmt.bits == 32 else "<f8").astype(np.float32)
        # Float files may hold values past full scale, or NaN from a broken encoder.
        values = np.clip(np.nan_to_num(values, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
    elif fmt.bits == 8:
        values = (np.frombuffer(data, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif fmt.bits == 24:
        # Place the 3 bytes in the top of an int32, then shift back down to keep the sign.
        widened = np.zeros((len(data) // 3, 4), dtype=np.uint8)
        widened[:, 1:] = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3)
        values = (widened.view("<i4")[:, 0] >> 8).astype(np.float32) / float(1 << 23)
    else:
        values = np.frombuffer(data, dtype=f"<i{fmt.bits // 8}").astype(np.float32) / float(1 << (fmt.bits - 1))
    return values.reshape(-1, fmt.channels)


def _read_exactly(stream: BinaryIO, size: int, what: str) -> bytes:
    data = stream.read(size)
    if len(data) < size:
        raise AudioRejected("truncated", f"the file ends inside its {what} ({len(data)} of {size} bytes present)")
    return data


def _skip(stream: BinaryIO, size: int, what: str = "chunk padding") -> None:
    # Read in blocks rather than seeking, so that a bogus chunk size can neither allocate
    # gigabytes nor seek past the end unnoticed, and unseekable streams work too.
    remaining = size
    while remaining:
        block = stream.read(min(remaining, _SKIP_BLOCK))
        if not block:
            if what == "chunk padding":
                return  # many writers omit the final pad byte
            raise AudioRejected("truncated", f"the file ends inside its {what}")
        remaining -= len(block)
