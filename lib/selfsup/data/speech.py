"""Synthetic speech: phones, speakers and utterances, turned into spectrogram frames (for chapter 8's SUPERB).

The generator is a source-filter model of speech, the textbook one:
- The **source** is what the larynx and the breath make. A voiced sound is a train of glottal pulses at the
  speaker's pitch f0 (its spectrum: harmonics at f0, 2 f0, 3 f0, ..., falling off with the speaker's spectral
  tilt), plus a little breath noise. An unvoiced sound (s, sh, f) is noise.
- The **filter** is the vocal tract. Each phone is a shape of the tract, given by its formants: resonance
  frequencies F1, F2, F3 (Hz) with bandwidths. A speaker's tract length scales every formant by the
  speaker's factor `tract` (a shorter tract, higher formants), as children's vowels sit higher than adults'.

A **phone** (`Phone`) is one of 16 sounds: ten vowels, two nasals, three fricatives and silence, with formants
near the average adult values of English vowels. A **speaker** (`Speaker`) is a pitch, a tract factor, a
spectral tilt, a breathiness and a speaking rate. A **word** is a fixed string of phones (a lexicon drawn
from the world's seed), so phones follow each other as in a language, not at random. An **utterance** is a
speaker saying words (with an occasional pause) for `n_frames` frames, with its own pitch offset, a falling
pitch (declination), a loudness and a background noise level. A **frame** is 10 ms: the log power spectrum
(dB) of a 32 ms Hann window of the 8 kHz waveform, bins 1-128 of a 256-point FFT (31.25 Hz apart, 31 Hz to
4 kHz). A frame's label is the phone being said at its centre; an utterance's label is its speaker.

The waveform is not built sample by sample: the source signals (a pulse train and white noise) are made in
the time domain and cut into windows, and the tract's filter multiplies their short-time spectra, the
standard approximation of a slowly varying filter. So the frames show what a real spectrogram shows: pitch
harmonics as fine stripes, formants as broad bands, fricative noise, transitions between phones.

    from selfsup.data.speech import SpeechWorld
    world = SpeechWorld(seed=0, n_speakers=40)
    u = world.utterances(200, speakers=range(10), seed=1)   # Utterances
    u.frames   # (200, 64, 128) float32, dB        u.phones  # (200, 64) int64 phone ids
    u.speakers  # (200,) int64 speaker ids         PHONES[i].name, world.speakers[j]

Everything is drawn from `numpy.random.default_rng` seeded with integers only, so the same arguments give the
same arrays in every process; generating 1000 utterances of 64 frames takes well under a second.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

SAMPLE_RATE = 8000  # Hz: telephone band, 4 kHz of spectrum
N_FFT = 256  # 32 ms window
HOP = 80  # 10 ms between frames
N_BINS = N_FFT // 2  # bins 1..128 of the FFT (the DC bin is dropped): 31.25 Hz apart
FREQS = np.arange(1, N_BINS + 1) * SAMPLE_RATE / N_FFT  # (128,) bin centres in Hz

# Stream ids for the random generators, so that each kind of draw has its own independent stream.
_LEXICON, _SPEAKERS, _UTTERANCES = 1, 2, 3


@dataclass(frozen=True)
class Phone:
    """A speech sound: how it is excited (`kind`) and the resonances of the tract that shape it.

    kind: "vowel" and "nasal" are voiced (pulses at the pitch); "fricative" is noise; "silence" is neither.
    formants: resonance frequencies in Hz for a tract factor of 1; bandwidths: their widths in Hz.
    gain: the sound's loudness relative to a vowel (amplitude).
    """

    name: str
    kind: str
    formants: tuple[float, ...]
    bandwidths: tuple[float, ...]
    gain: float = 1.0

    @property
    def voiced(self) -> bool:
        """Whether the vocal folds vibrate (vowels and nasals)."""
        return self.kind in ("vowel", "nasal")


def _vowel(name: str, f1: float, f2: float, f3: float) -> Phone:
    return Phone(name, "vowel", (f1, f2, f3), (80.0, 110.0, 160.0))


# Formants near the average adult values of English vowels (Peterson & Barney 1952, rounded), so that, as in
# real speech, neighbouring vowels overlap once speakers' tract lengths differ.
PHONES: tuple[Phone, ...] = (
    _vowel("i", 300, 2300, 3000),
    _vowel("ɪ", 400, 2000, 2600),
    _vowel("e", 530, 1850, 2500),
    _vowel("æ", 680, 1700, 2450),
    _vowel("a", 750, 1150, 2450),
    _vowel("ɔ", 580, 850, 2400),
    _vowel("ʊ", 450, 1050, 2250),
    _vowel("u", 320, 900, 2250),
    _vowel("ʌ", 640, 1200, 2400),
    _vowel("ɝ", 490, 1350, 1700),
    Phone("m", "nasal", (250.0, 1100.0, 2300.0), (80.0, 300.0, 300.0), 0.4),
    Phone("n", "nasal", (250.0, 1600.0, 2600.0), (80.0, 300.0, 300.0), 0.4),
    Phone("s", "fricative", (3600.0,), (700.0,), 0.35),
    Phone("ʃ", "fricative", (2500.0,), (900.0,), 0.4),
    Phone("f", "fricative", (1800.0,), (4000.0,), 0.12),
    Phone("sil", "silence", (), (), 0.0),
)
PHONE_NAMES: tuple[str, ...] = tuple(p.name for p in PHONES)
VOWELS = tuple(i for i, p in enumerate(PHONES) if p.kind == "vowel")
CONSONANTS = tuple(i for i, p in enumerate(PHONES) if p.kind in ("nasal", "fricative"))
_VOICED = np.array([p.voiced for p in PHONES], dtype=float)
_FRICATIVE = np.array([p.kind == "fricative" for p in PHONES], dtype=float)
SILENCE = PHONE_NAMES.index("sil")

# Durations in frames (10 ms): a range per kind, scaled by the speaker's rate.
_DURATIONS = {"vowel": (7, 14), "nasal": (4, 8), "fricative": (5, 10), "silence": (4, 10)}


@dataclass(frozen=True)
class Speaker:
    """A voice: the same for every utterance of one speaker (each utterance then varies around it).

    f0: mean pitch in Hz (85-255); tract: formant scale factor (0.85-1.2, shorter tracts above 1);
    tilt: how fast the voice's harmonics weaken, in dB per octave beyond the tract's own fall-off (0-6; higher
    sounds softer);
    breath: the breath noise mixed into voiced sounds (amplitude relative to the pulses, 0-0.5);
    rate: speaking rate, a factor on phone durations (0.8-1.25, below 1 is faster).
    """

    id: int
    f0: float
    tract: float
    tilt: float
    breath: float
    rate: float


@dataclass
class Utterances:
    """A batch of utterances as spectrogram frames, with their labels.

    frames: (N, T, 128) float32 log power in dB; phones: (N, T) int64 ids into PHONES (the phone said at each
    frame's centre); speakers: (N,) int64 ids into the world's speakers; words: the word ids said, per
    utterance; f0: (N, T) float32, the pitch at each frame in Hz (0 where unvoiced), for figures and probes.
    """

    frames: torch.Tensor
    phones: torch.Tensor
    speakers: torch.Tensor
    words: list[list[int]]
    f0: torch.Tensor

    def __len__(self) -> int:
        """The number of utterances."""
        return self.frames.size(0)


def resonance(freqs: np.ndarray, formant: np.ndarray, bandwidth: np.ndarray) -> np.ndarray:
    """|H(f)| of one second-order resonance (a formant), 1 at f = 0; broadcasts over frames.

    formant, bandwidth: (..., 1) in Hz; freqs: (F,) in Hz. The analogue resonator with poles at
    -pi B +- 2 pi i F, as in a cascade formant synthesiser (Klatt 1980).
    """
    sigma, w0, w = np.pi * bandwidth, 2 * np.pi * formant, 2 * np.pi * freqs
    return (sigma**2 + w0**2) / np.sqrt((sigma**2 + (w - w0) ** 2) * (sigma**2 + (w + w0) ** 2))


def tract_filter(phone: Phone, tract: float, freqs: np.ndarray = FREQS) -> np.ndarray:
    """The amplitude response (F,) of the tract saying `phone`, its formants scaled by `tract`."""
    if phone.kind == "silence":
        return np.zeros_like(freqs)
    h = np.full_like(freqs, phone.gain)
    for f, b in zip(phone.formants, phone.bandwidths, strict=True):
        r = resonance(freqs, np.asarray(f * tract), np.asarray(b))
        if phone.kind == "fricative":  # noise through one resonance, scaled to 1 at its peak
            r = r / resonance(np.asarray(f * tract), np.asarray(f * tract), np.asarray(b))
        h = h * r
    return h


def hz_to_mel(f: np.ndarray | float) -> np.ndarray | float:
    """The mel scale (O'Shaughnessy's formula): roughly linear below 1 kHz, logarithmic above."""
    return 2595 * np.log10(1 + np.asarray(f) / 700)


def mel_filterbank(n_mels: int = 40, low_hz: float = 60.0, high_hz: float = SAMPLE_RATE / 2) -> np.ndarray:
    """(n_mels, 128) triangular filters, evenly spaced on the mel scale, over the FFT bins `FREQS`.

    Each filter rises from the previous band's centre to its own and falls to the next one's; a filter
    narrower than a bin still catches the bin nearest its centre, so no band is empty.
    """
    edges = 700 * (10 ** (np.linspace(hz_to_mel(low_hz), hz_to_mel(high_hz), n_mels + 2) / 2595) - 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (FREQS - lo) / (mid - lo)
    down = (hi - FREQS) / (hi - mid)
    fb = np.clip(np.minimum(up, down), 0, None)
    nearest = np.abs(FREQS[None, :] - mid).argmin(1)
    fb[np.arange(n_mels), nearest] = np.maximum(fb[np.arange(n_mels), nearest], 1.0)
    return fb


def _check_count(name: str, value: object, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}={value!r} must be an integer >= {low}")
    return int(value)


class SpeechWorld:
    """A lexicon and a population of speakers, drawn from `seed`; it generates utterances as spectrograms.

    Args:
        seed: draws the lexicon and the speakers.
        n_speakers: how many speakers the world has (ids 0 .. n_speakers - 1).
        n_words: the size of the lexicon; a word is 1-3 syllables of (consonant) vowel (consonant).
    """

    def __init__(self, seed: int = 0, n_speakers: int = 40, n_words: int = 40) -> None:
        self.seed = _check_count("seed", seed, low=0)
        self.n_speakers = _check_count("n_speakers", n_speakers)
        self.n_words = _check_count("n_words", n_words)
        self.lexicon = self._draw_lexicon(np.random.default_rng([self.seed, _LEXICON]))
        self.speakers = self._draw_speakers(np.random.default_rng([self.seed, _SPEAKERS]))
        self._filter_cache: dict[int, np.ndarray] = {}

    def _draw_lexicon(self, rng: np.random.Generator) -> list[tuple[int, ...]]:
        words: list[tuple[int, ...]] = []
        while len(words) < self.n_words:
            word: list[int] = []
            for _ in range(int(rng.integers(1, 4))):
                if rng.random() < 0.7:
                    word.append(int(rng.choice(CONSONANTS)))
                word.append(int(rng.choice(VOWELS)))
                if rng.random() < 0.3:
                    word.append(int(rng.choice(CONSONANTS)))
            if tuple(word) not in words:
                words.append(tuple(word))
        return words

    def _draw_speakers(self, rng: np.random.Generator) -> list[Speaker]:
        speakers = []
        for i in range(self.n_speakers):
            # Pitch and tract length go together loosely (larger people, lower voices and longer tracts).
            size = rng.random()
            f0 = float(85 * 3 ** (0.7 * size + 0.3 * rng.random()))  # 85-255 Hz
            tract = float(0.85 + 0.35 * (0.5 * size + 0.5 * rng.random()))  # 0.85-1.2
            speakers.append(
                Speaker(
                    id=i,
                    f0=f0,
                    tract=tract,
                    tilt=float(rng.uniform(0, 6)),
                    breath=float(rng.uniform(0.0, 0.5)),
                    rate=float(rng.uniform(0.8, 1.25)),
                )
            )
        return speakers

    def utterances(
        self,
        n: int,
        speakers: Iterable[int] | None = None,
        seed: int = 0,
        n_frames: int = 64,
        snr_db: tuple[float, float] = (5.0, 25.0),
        n_mels: int | None = 40,
    ) -> Utterances:
        """`n` utterances of `n_frames` frames, their speakers cycling through `speakers` (default: all).

        Args:
            n: the number of utterances.
            speakers: the speaker ids to draw from, in turn (utterance i is said by speakers[i % len]).
            seed: draws the words, durations, pitch contours, loudness and noise.
            n_frames: frames per utterance (10 ms each); every utterance is cut to exactly this length.
            snr_db: the range of the background noise's signal-to-noise ratio in dB, drawn per utterance.
            n_mels: frames are log mel filterbank energies in this many bands (as speech models take them);
                None gives the 128 linear FFT bins instead, where pitch harmonics are resolved.
        """
        n = _check_count("n", n)
        n_frames = _check_count("n_frames", n_frames, low=4)
        seed = _check_count("seed", seed, low=0)
        ids = list(range(self.n_speakers)) if speakers is None else [int(s) for s in speakers]
        if not ids:
            raise ValueError("speakers is empty; give at least one speaker id")
        bad = [s for s in ids if not 0 <= s < self.n_speakers]
        if bad:
            raise ValueError(f"speaker ids {bad} are not in this world's range 0..{self.n_speakers - 1}")
        if len(snr_db) != 2 or not snr_db[0] <= snr_db[1]:
            raise ValueError(f"snr_db={snr_db!r} must be a (low, high) pair with low <= high")
        rng = np.random.default_rng([self.seed, _UTTERANCES, seed])
        if n_mels is not None:
            n_mels = _check_count("n_mels", n_mels, low=2)
            if n_mels > 64:
                raise ValueError(f"n_mels={n_mels} is too many for 128 FFT bins; use at most 64, or None")
        fbank = None if n_mels is None else mel_filterbank(n_mels)
        frames = np.empty((n, n_frames, N_BINS if n_mels is None else n_mels), dtype=np.float32)
        phones = np.empty((n, n_frames), dtype=np.int64)
        f0s = np.empty((n, n_frames), dtype=np.float32)
        words = []
        for i in range(n):
            spk = self.speakers[ids[i % len(ids)]]
            power, phones[i], f0s[i], w = self._utterance(spk, n_frames, snr_db, rng)
            frames[i] = 10 * np.log10((power if fbank is None else power @ fbank.T) + 1e-8)
            words.append(w)
        return Utterances(
            frames=torch.from_numpy(frames),
            phones=torch.from_numpy(phones),
            speakers=torch.tensor([ids[i % len(ids)] for i in range(n)], dtype=torch.int64),
            words=words,
            f0=torch.from_numpy(f0s),
        )

    def _filters(self, spk: Speaker) -> np.ndarray:
        """(n_phones, 128): the speaker's tract response for every phone, computed once per speaker."""
        if spk.id not in self._filter_cache:
            self._filter_cache[spk.id] = np.stack([tract_filter(p, spk.tract) for p in PHONES])
        return self._filter_cache[spk.id]

    def _segments(self, spk: Speaker, n_frames: int, rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
        """The phone said at each frame (n_frames,), from words with occasional pauses, and the word ids."""
        labels: list[int] = []
        words: list[int] = []
        if rng.random() < 0.5:  # half the utterances start in the middle of speech
            labels += [SILENCE] * int(rng.integers(0, 6))
        while len(labels) < n_frames:
            w = int(rng.integers(self.n_words))
            words.append(w)
            for p in self.lexicon[w]:
                lo, hi = _DURATIONS[PHONES[p].kind]
                labels += [p] * max(2, round(rng.integers(lo, hi + 1) * spk.rate))
            if rng.random() < 0.25:
                lo, hi = _DURATIONS["silence"]
                labels += [SILENCE] * int(rng.integers(lo, hi + 1))
        return np.asarray(labels[:n_frames], dtype=np.int64), words

    def _utterance(
        self, spk: Speaker, n_frames: int, snr_db: tuple[float, float], rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
        labels, words = self._segments(spk, n_frames, rng)
        n_samples = (n_frames - 1) * HOP + N_FFT
        # Pitch: the speaker's, times an offset for this utterance, falling by 0-20 % over it, with a slow wobble.
        t = np.arange(n_samples) / SAMPLE_RATE
        dur = n_samples / SAMPLE_RATE
        wobble = 0.03 * np.sin(2 * np.pi * rng.uniform(1, 4) * t + rng.uniform(0, 2 * np.pi))
        f0 = spk.f0 * rng.uniform(0.92, 1.08) * (1 - rng.uniform(0, 0.2) * t / dur) * (1 + wobble)
        # Source 1: glottal pulses, one each time the pitch's phase passes an integer, with 1 % jitter.
        phase = np.cumsum(f0 * (1 + rng.normal(0, 0.01, n_samples))) / SAMPLE_RATE
        pulses = np.diff(np.floor(phase), prepend=0.0)
        # Source 2: white noise (breath, fricatives); and the background, independent of both.
        noise = rng.normal(0, 1, n_samples)
        background = rng.normal(0, 1, n_samples)
        window = np.hanning(N_FFT)
        starts = np.arange(n_frames) * HOP
        idx = starts[:, None] + np.arange(N_FFT)  # (T, N_FFT)
        spec = lambda x: np.fft.rfft(x[idx] * window, axis=1)[:, 1:]  # (T, 128) complex, DC dropped
        pulses_f, noise_f, background_f = spec(pulses), spec(noise), spec(background)
        # The filter of every frame, with a 3-frame moving average of the tract's response for coarticulation.
        filters = self._filters(spk)[labels]  # (T, 128)
        padded = np.concatenate([filters[:1], filters, filters[-1:]])
        filters = (padded[:-2] + padded[1:-1] + padded[2:]) / 3
        voiced = _VOICED[labels][:, None]
        fricative = _FRICATIVE[labels][:, None]
        # The voice's harmonics weaken by `tilt` dB per octave above 100 Hz; pulses per window grow with f0.
        tilt = (np.maximum(FREQS, 100.0) / 100.0) ** (-spk.tilt * np.log2(10) / 20)
        source = voiced * (pulses_f * tilt / np.sqrt(spk.f0 / 100) + spk.breath * 0.1 * noise_f)
        source = source + fricative * 0.15 * noise_f
        speech = source * filters
        power = np.abs(speech) ** 2
        speech_power = power.sum(1).mean() + 1e-12
        snr = 10 ** (rng.uniform(*snr_db) / 10)
        noisy = speech + np.sqrt(speech_power / snr / (np.abs(background_f) ** 2).sum(1).mean()) * background_f
        # Loudness: speech at a common level, then a random gain of +-6 dB (a louder or quieter recording).
        gain_db = rng.uniform(-6, 6)
        frames_power = np.abs(noisy) ** 2 / speech_power * N_BINS * 10 ** (gain_db / 10)
        centres = starts + N_FFT // 2
        frame_f0 = np.where(voiced[:, 0] > 0, f0[centres], 0.0)
        return frames_power, labels, frame_f0.astype(np.float32), words


def speaker_table(world: SpeechWorld, ids: Sequence[int] | None = None) -> list[dict[str, float]]:
    """The speakers' parameters as rows of plain numbers (for a table in the book)."""
    chosen = range(world.n_speakers) if ids is None else ids
    return [vars(world.speakers[i]).copy() for i in chosen]


__all__ = [
    "FREQS",
    "HOP",
    "N_BINS",
    "N_FFT",
    "PHONES",
    "PHONE_NAMES",
    "SAMPLE_RATE",
    "Phone",
    "Speaker",
    "SpeechWorld",
    "Utterances",
    "resonance",
    "speaker_table",
    "tract_filter",
]
