"""Greedy and beam-search translation, and sampling from the language model.

Every model call sees the same shapes: sequences are padded to the model's
length and batches to a fixed number of rows, so XLA compiles the predict step
once and each generated token costs one call of it (the whole sequence is run
again; at these lengths that is cheaper than a second compiled cache path).
The search itself (argmax, top-k, beams) runs in numpy, in float64.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from .seq_text import END_ID, PAD_ID, START_ID

NEVER = (PAD_ID, START_ID)  # ids a decoder must not emit


def translate(net: keras.Model, source_ids: np.ndarray, *, decoding: str, beam_width: int,
              length_penalty: float, batch_size: int) -> list[list[int]]:
    """Target ids (without markers, cut at ``[END]``) for every row of ``source_ids``."""
    if len(source_ids) == 0:
        return []
    beam = decoding == "beam" and beam_width > 1
    # Sources per call (beams multiply them); fewer when there are fewer sentences.
    rows = min(len(source_ids), max(1, batch_size // beam_width) if beam else batch_size)

    def search(chunk: np.ndarray) -> list[list[int]]:
        return _beam(net, chunk, beam_width, length_penalty) if beam else _greedy(net, chunk)

    results: list[list[int]] = []
    for start in range(0, len(source_ids), rows):
        chunk = source_ids[start:start + rows]
        padded = np.zeros((rows, source_ids.shape[1]), dtype=np.int32)
        padded[:len(chunk)] = chunk  # the last chunk is padded: one shape for every call
        results += search(padded)[:len(chunk)]
    return results


def _next_log_probs(net: keras.Model, sources: np.ndarray, targets: np.ndarray, step: int
                    ) -> np.ndarray:
    logits = np.asarray(net.predict_on_batch({"encoder_ids": sources, "decoder_ids": targets}),
                        dtype=np.float64)[:, step, :]
    logits[:, NEVER] = -np.inf
    return logits - _logsumexp(logits)


def _greedy(net: keras.Model, sources: np.ndarray) -> list[list[int]]:
    count, length = sources.shape
    targets = np.zeros((count, length), dtype=np.int32)
    targets[:, 0] = START_ID
    done = np.zeros(count, dtype=bool)
    for step in range(length - 1):
        chosen = np.argmax(_next_log_probs(net, sources, targets, step), axis=-1)
        targets[:, step + 1] = np.where(done, PAD_ID, chosen)
        done |= chosen == END_ID
        if done.all():
            break
    return [_strip(row) for row in targets]


def _beam(net: keras.Model, sources: np.ndarray, width: int, length_penalty: float
          ) -> list[list[int]]:
    count, length = sources.shape
    repeated = np.repeat(sources, width, axis=0)
    beams = np.zeros((count, width, length), dtype=np.int32)
    beams[:, :, 0] = START_ID
    scores = np.full((count, width), -np.inf)
    scores[:, 0] = 0.0  # all beams start identical: keep one so the first step is not k copies
    finished = np.zeros((count, width), dtype=bool)
    lengths = np.ones((count, width))
    for step in range(length - 1):
        log_probs = _next_log_probs(net, repeated, beams.reshape(count * width, length), step)
        log_probs = log_probs.reshape(count, width, -1)
        # A finished beam can only continue with padding, at no cost.
        log_probs[finished] = -np.inf
        log_probs[finished, PAD_ID] = 0.0
        vocabulary_size = log_probs.shape[-1]
        candidates = (scores[..., None] + log_probs).reshape(count, -1)
        best = np.argsort(-candidates, axis=1, kind="stable")[:, :width]
        parent, token = best // vocabulary_size, best % vocabulary_size
        beams = np.take_along_axis(beams, parent[..., None], axis=1)
        beams[:, :, step + 1] = token
        scores = np.take_along_axis(candidates, best, axis=1)
        was_finished = np.take_along_axis(finished, parent, axis=1)
        lengths = np.take_along_axis(lengths, parent, axis=1) + ~was_finished
        finished = was_finished | (token == END_ID)
        if finished.all():
            break
    normalised = scores / lengths ** length_penalty
    winners = np.argmax(normalised, axis=1)
    return [_strip(beams[i, winners[i]]) for i in range(count)]


def sample(net: keras.Model, prompt: list[int], length: int, *, max_new_tokens: int,
           temperature: float, top_k: int, rng: np.random.Generator,
           stop: Callable[[list[int]], bool] | None = None) -> list[int]:
    """Tokens sampled after ``prompt`` (which starts with ``[START]``) until ``[END]``,
    ``max_new_tokens``, the model's length, or ``stop(new_tokens)`` says so."""
    ids = np.zeros((1, length), dtype=np.int32)
    ids[0, :len(prompt)] = prompt
    position = len(prompt)
    new: list[int] = []
    while len(new) < max_new_tokens and position < length:
        logits = np.asarray(net.predict_on_batch(ids), dtype=np.float64)[0, position - 1]
        token = pick_token(logits, temperature=temperature, top_k=top_k, rng=rng)
        if token == END_ID:
            break
        ids[0, position] = token
        position += 1
        new.append(token)
        if stop is not None and stop(new):
            break
    return new


def pick_token(logits: np.ndarray, *, temperature: float, top_k: int,
               rng: np.random.Generator) -> int:
    """Argmax at temperature 0; else a draw from the top-k softmax at ``temperature``."""
    logits = np.array(logits, dtype=np.float64)
    logits[list(NEVER)] = -np.inf
    if temperature <= 0:
        return int(np.argmax(logits))
    if 0 < top_k < len(logits):
        cutoff = np.partition(logits, -top_k)[-top_k]
        logits[logits < cutoff] = -np.inf
    scaled = logits / temperature
    probabilities = np.exp(scaled - _logsumexp(scaled[None])[0])
    return int(rng.choice(len(logits), p=probabilities / probabilities.sum()))


def _strip(row: np.ndarray) -> list[int]:
    out: list[int] = []
    for token in row[1:]:
        if token in (END_ID, PAD_ID):
            break
        out.append(int(token))
    return out


def _logsumexp(values: np.ndarray) -> np.ndarray:
    peak = np.max(values, axis=-1, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    return peak + np.log(np.sum(np.exp(values - peak), axis=-1, keepdims=True))
