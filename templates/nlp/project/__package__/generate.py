"""``predict`` for the generating tasks: translate, continue a prompt, or chat.

Inputs are read as for classification (raw texts, ``.txt`` files with one text per
line, ``.csv`` / ``.jsonl`` files' text column), and ``-`` reads them from stdin.

- translation: each input is a source sentence; ``predict.decoding`` (beam / greedy)
  picks the search; writes ``OUT/translations.csv``.
- causal_lm, ``predict.mode = "sample"``: each input is a prompt, continued with up
  to ``predict.max_new_tokens`` sampled tokens; writes ``OUT/samples.csv``.
- causal_lm, ``predict.mode = "chat"``: each input is the user's next turn; the
  conversation so far stays in the prompt (oldest turns dropped when it no longer
  fits the model's length); writes ``OUT/chat.txt``. With ``-`` it is interactive.
  ``predict.mode`` is read from RUN/config.toml: set it at training time
  (``--set predict.mode=chat``) or edit that file.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from . import rundir
from .chat import Conversation
from .config import Config, choice, get
from .csv_out import write_csv
from .decoding import sample, translate
from .errors import ConfigError
from .lm_data import lm_tokenizer
from .seq_text import START_ID, detokenize
from .text_io import collect_texts
from .translation_data import encode_sources, text_of

SHOWN = 20


def run_generation(run: rundir.RunDir, config: Config, meta: dict[str, Any],
                   inputs: list[Path], out: Path | None) -> Path:
    """Predict with a translation or causal_lm run; return the output folder."""
    net = rundir.load_model(rundir.model_checkpoint(run))
    out = rundir.output_folder(run, out)
    if meta["task"] == "translation":
        return _translate(net, meta, _texts(inputs, meta["source_column"]), out)
    mode = choice(config, "predict.mode", ("sample", "chat"))
    if mode == "chat":
        return _chat(net, config, meta, inputs, out)
    return _sample(net, config, meta, _texts(inputs, meta["text_column"]), out)


def _texts(inputs: list[Path], column: str) -> tuple[list[str], list[str]]:
    if [str(item) for item in inputs] == ["-"]:
        lines = [line.rstrip("\n") for line in sys.stdin if line.strip()]
        return [f"stdin:{i + 1}" for i in range(len(lines))], lines
    return collect_texts(inputs, column)


def _translate(net: Any, meta: dict[str, Any], named: tuple[list[str], list[str]],
               out: Path) -> Path:
    sources, texts = named
    length = int(meta["sequence_length"])
    source_ids, truncated = encode_sources(meta, texts)
    if truncated:
        print(f"note: {truncated} sentence(s) longer than {length} tokens were truncated",
              flush=True)
    settings = meta["decoding"]
    decoded = translate(net, source_ids, decoding=settings["decoding"],
                        beam_width=int(settings["beam_width"]),
                        length_penalty=float(settings["length_penalty"]),
                        batch_size=int(settings["batch_size"]))
    target_text = text_of(meta, "target")
    translations = [target_text(ids) for ids in decoded]
    target = _write_rows(out / "translations.csv", ["source", "text", "translation"],
                         sources, texts, translations, shown="{1}\n  -> {2}")
    print(f"{len(texts)} translation(s) ({settings['decoding']} search) written to {target}")
    return out


def _write_rows(target: Path, header: list[str], *columns: list[str], shown: str) -> Path:
    """Write the columns as CSV; print the first rows with the ``shown`` format."""
    rows = list(zip(*columns, strict=True))
    write_csv(target, header, rows)
    for row in rows[:SHOWN]:
        print(shown.format(*row))
    return target


def _sampling(config: Config) -> dict[str, Any]:
    new = int(get(config, "predict.max_new_tokens"))
    if new < 1:
        raise ConfigError(f"predict.max_new_tokens must be at least 1; got {new}")
    return {"max_new_tokens": new, "temperature": float(get(config, "predict.temperature")),
            "top_k": int(get(config, "predict.top_k"))}


def _sample(net: Any, config: Config, meta: dict[str, Any],
            named: tuple[list[str], list[str]], out: Path) -> Path:
    sources, prompts = named
    settings = _sampling(config)
    length = int(meta["sequence_length"])
    tokenizer = lm_tokenizer(meta)
    keep = max(0, length - settings["max_new_tokens"] - 1)  # room for what is sampled
    continuations = []
    for index, prompt in enumerate(prompts):
        ids = tokenizer.encode(prompt)
        if len(ids) > keep:
            print(f"note: prompt {index + 1} keeps its last {keep} of {len(ids)} tokens",
                  flush=True)
            ids = ids[len(ids) - keep:] if keep else []
        rng = np.random.default_rng((int(get(config, "predict.seed")), index))
        new = sample(net, [START_ID, *ids], length, rng=rng, **settings)
        continuations.append(tokenizer.decode(new) if meta.get("preset")
                             else detokenize(meta["vocabulary"], new))
    target = _write_rows(out / "samples.csv", ["source", "prompt", "continuation"],
                         sources, prompts, continuations, shown="{1} >>> {2}")
    print(f"{len(prompts)} sample(s) written to {target}")
    return out


def _chat(net: Any, config: Config, meta: dict[str, Any], inputs: list[Path],
          out: Path) -> Path:
    settings = _sampling(config)
    tokenizer = lm_tokenizer(meta)  # a preset's tokenizer, or the run's WordPiece
    conversation = Conversation(
        tokenizer, tokenizer.decode if meta.get("preset")
        else lambda ids: detokenize(meta["vocabulary"], ids), int(meta["sequence_length"]),
        user=str(get(config, "predict.user_marker")),
        assistant=str(get(config, "predict.assistant_marker")),
        reply_budget=settings["max_new_tokens"])
    interactive = [str(item) for item in inputs] == ["-"] and sys.stdin.isatty()
    if [str(item) for item in inputs] == ["-"]:
        turns = _stdin_turns(interactive)
    else:
        turns = iter(collect_texts(inputs, str(meta.get("text_column", "text")))[1])
    rng = np.random.default_rng(int(get(config, "predict.seed")))
    for message in turns:
        prompt = conversation.prompt(message)
        new = sample(net, prompt, int(meta["sequence_length"]), rng=rng,
                     stop=conversation.ends_reply, **settings)
        reply = conversation.add(message, new)
        print(f"{conversation.user} {message}\n{conversation.assistant} {reply}", flush=True)
    target = out / "chat.txt"
    rundir.atomic_write_text(target, conversation.transcript())
    print(f"{len(conversation.turns)} turn(s); transcript written to {target}")
    return out


def _stdin_turns(interactive: bool) -> Any:
    while True:
        if interactive:
            print("you> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:
            return
        if line.strip():
            yield line.strip()
