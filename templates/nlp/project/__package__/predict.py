"""``python -m PACKAGE predict``: the class of raw texts, text files and CSV/JSONL files.

(Translation and causal_lm runs are handed to ``generate.py``: translations, sampled
continuations or a chat, from the same kinds of inputs.)

Each INPUT is one of:

- a ``.txt`` file: one text per line (empty lines skipped);
- a ``.csv`` / ``.tsv`` / ``.jsonl`` file: the texts in ``data.text_column``;
- anything else that is not an existing file: the text itself, e.g.
  ``predict --run-dir R "not bad at all" "a dull, clumsy film"``.

Prints ``label  probability  text`` for the first rows and writes every row to
``OUT/predictions.csv`` (default ``RUN/predictions``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import rundir
from .config import get, load_config
from .csv_out import write_csv
from .data import make_encoder
from .text_io import collect_texts

# An INPUT that is not an existing file is the text itself, so the command line does not
# report it as a missing file (__main__ reads this line without importing this module).
TAKES_TEXT = True

def run_prediction(run_path: Path, inputs: list[Path], out: Path | None,
                   overrides: list[str] | None = None) -> Path:
    """Predict every input; return the output folder."""
    run = rundir.open_existing(run_path)
    config = load_config(run.config, overrides or [])  # predict --set KEY=VALUE
    meta = rundir.read_meta(run)
    if meta.get("task") in ("translation", "causal_lm"):
        from .generate import run_generation

        return run_generation(run, config, meta, inputs, out)
    sources, texts = collect_texts(inputs, str(meta.get("text_column", "text")))
    encoded, truncated = make_encoder(meta)(texts)
    if truncated:
        print(f"note: {truncated} text(s) longer than {meta['sequence_length']} tokens were "
              "truncated", flush=True)
    net = rundir.load_model(rundir.model_checkpoint(run))
    rundir.check_model_outputs(net, meta)
    probabilities = np.asarray(net.predict(encoded, batch_size=int(get(config,
                                                                       "predict.batch_size")),
                                           verbose=0))
    class_names = list(meta["class_names"])
    best = np.argmax(probabilities, axis=1)
    out = rundir.output_folder(run, out)
    target = write_csv(out / "predictions.csv",
                       ["source", "text", "label", "probability",
                        *[f"p_{name}" for name in class_names]],
                       ([source, text, class_names[index], f"{row[index]:.4f}",
                         *[f"{p:.4f}" for p in row]]
                        for source, text, index, row in zip(sources, texts, best, probabilities,
                                                            strict=True)))
    for text, index, row in list(zip(texts, best, probabilities, strict=True))[:20]:
        shown = text if len(text) <= 70 else text[:67] + "..."
        print(f"{class_names[index]:>12}  {row[index]:.3f}  {shown}")
    print(f"{len(texts)} prediction(s) written to {target}")
    return out
