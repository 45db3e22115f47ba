"""End to end: generate the nlp project and use it as a new user would."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from project_runner import generate, last_line, run_project, train_ok

pytestmark = pytest.mark.slow

QUICK = ("--set", "train.epochs=1", "--set", "data.max_rows=600", "--set", "train.batch_size=32")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("nlp"), "reviews_demo", "nlp")


@pytest.fixture(scope="module")
def trained_run(project: Path) -> Path:
    run = project / "runs" / "tf"
    out = train_ok(project, run, *QUICK).stdout
    assert "validation accuracy" in out and "TF-IDF + logistic-regression baseline" in out
    return run


def test_train_writes_the_run_directory(trained_run: Path) -> None:
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 1
    final = metrics["final"]
    assert 0.0 <= final["accuracy"] <= 1.0 and 0.0 <= final["macro_f1"] <= 1.0
    assert set(final["per_class_recall"]) == {"negative", "positive"}
    for name in ("training_curves", "confusion_matrix"):
        assert (trained_run / "plots" / f"{name}.png").stat().st_size > 1000
    meta = json.loads((trained_run / "meta.json").read_text())
    assert meta["vocabulary"][:2] == ["[PAD]", "[UNK]"] and meta["sequence_length"] >= 16
    assert (trained_run / "checkpoints" / "best.keras").is_file()


def test_evaluate_encodes_with_the_recorded_vocabulary(project: Path, trained_run: Path,
                                                       tmp_path: Path) -> None:
    # The training file changes after training and the other tokenizer learner is asked
    # for: evaluate must still score the validation split with the run's own vocabulary,
    # so its numbers are the ones train reported.
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    data = tmp_path / "data"
    shutil.copytree(project / "data", data)
    with (data / "train.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(600):
            writer.writerow([f"zorblax quintessential{i % 7} flummoxed gargantuan {i}",
                             ("positive", "negative")[i % 2]])
    config = (run / "config.toml").read_text(encoding="utf-8")
    config = config.replace('dir = "data"', f'dir = "{data}"', 1)
    assert str(data) in config
    (run / "config.toml").write_text(config.replace('learner = "auto"', 'learner = "python"')
                                     .replace('learner = "keras_hub"', 'learner = "python"'),
                                     encoding="utf-8")
    result = run_project(project, "evaluate", "--run-dir", str(run))
    assert result.returncode == 0, result.stderr[-2000:]
    evaluation = json.loads((run / "evaluation.json").read_text())
    final = json.loads((trained_run / "metrics.json").read_text())["final"]
    assert evaluation["samples"] == 600
    assert evaluation["accuracy"] == pytest.approx(final["accuracy"], abs=1e-9)
    assert evaluation["macro_f1"] == pytest.approx(final["macro_f1"], abs=1e-9)
    assert evaluation["tfidf_lr_accuracy"] == final["tfidf_lr_accuracy"]


def test_report_has_a_tfidf_baseline_fitted_on_training_texts(project: Path,
                                                              trained_run: Path) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    def rows(name: str, limit: int) -> tuple[list[str], list[str]]:
        with (project / "data" / name).open(newline="", encoding="utf-8") as handle:
            read = list(csv.DictReader(handle))[:limit]
        return [r["text"] for r in read], [r["label"] for r in read]

    (texts, labels), (val_texts, val_labels) = rows("train.csv", 600), rows("val.csv", 10**6)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    classifier = LogisticRegression(max_iter=1000, random_state=0).fit(
        vectorizer.fit_transform(texts), labels)  # the training rows train read (max_rows)
    expected = (classifier.predict(vectorizer.transform(val_texts)) == val_labels).mean()
    final = json.loads((trained_run / "metrics.json").read_text())["final"]
    assert final["tfidf_lr_accuracy"] == pytest.approx(expected)
    assert final["tfidf_lr_accuracy"] > final["chance_accuracy"]


def test_predict_raw_text_and_files(project: Path, trained_run: Path, tmp_path: Path) -> None:
    texts = tmp_path / "lines.txt"
    texts.write_text("the plot was superb\n\nthe ending was awful\n", encoding="utf-8")
    out = tmp_path / "predictions"
    result = run_project(project, "predict", "--run-dir", str(trained_run),
                         "the acting was not bad at all", str(texts),
                         str(project / "data" / "val.csv"), "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    with (out / "predictions.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["text"] == "the acting was not bad at all"
    assert len(rows) == 3 + 600  # one argument, two non-empty lines, every val.csv row
    assert {row["label"] for row in rows} <= {"negative", "positive"}
    assert all(0.5 <= float(row["probability"]) <= 1.0 for row in rows)
    assert "the acting was not bad at all" in result.stdout


def test_non_utf8_file_is_named_in_one_line(project: Path, tmp_path: Path) -> None:
    data = tmp_path / "latin"
    data.mkdir()
    (data / "train.csv").write_bytes("text,label\ntrès bien,positive\nnul,negative\n"
                                     .encode("latin-1"))
    result = run_project(project, "train", "--run-dir", str(tmp_path / "r"),
                         "--set", f'data.dir="{data}"')
    assert result.returncode == 2
    assert "train.csv is not UTF-8" in last_line(result.stderr)
    assert "Traceback" not in result.stderr


def test_missing_label_column_is_named(project: Path, tmp_path: Path) -> None:
    data = tmp_path / "nolabel"
    data.mkdir()
    (data / "train.csv").write_text("review,stars\ngood,5\nbad,1\n", encoding="utf-8")
    result = run_project(project, "train", "--run-dir", str(tmp_path / "r"),
                         "--set", f'data.dir="{data}"')
    assert result.returncode == 2
    assert "train.csv: no column 'text'" in last_line(result.stderr)


# --------------------------------------------------------------------------- translation

TINY = ("--set", "model.embedding_dim=64", "--set", "model.num_layers=1",
        "--set", "model.num_heads=2", "--set", "model.intermediate_dim=128",
        "--set", "train.batch_size=32", "--set", 'tokenizer.learner="python"')


def own_tests(project: Path) -> subprocess.CompletedProcess[str]:
    """The generated project's own tests (TensorFlow), as its user would run them."""
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests"], cwd=project, env=env, capture_output=True, text=True,
                          timeout=900, check=False)


def train_on_jax(project: Path, run: Path, *overrides: str, headline: str) -> None:
    """One epoch of a tiny model on JAX through the CLI; it must end with its headline."""
    sets = [part for item in overrides for part in ("--set", item)]
    result = run_project(project, "train", "--run-dir", str(run), *TINY, "--set",
                         "train.epochs=1", *sets, backend="jax")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "backend jax" in result.stdout and headline in result.stdout


@pytest.fixture(scope="module")
def translation_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("nlp_tr"), "phrasebook", "nlp", task="translation")


def test_translation_project_has_its_config_and_sample_pairs(translation_project: Path) -> None:
    config = (translation_project / "config.toml").read_text(encoding="utf-8")
    assert 'task = "translation"' in config and 'decoding = "beam"' in config
    assert 'monitor = "val_loss"' in config and "label_column" not in config
    with (translation_project / "data" / "val.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert len(rows) == 500 and set(rows[0]) == {"source", "target"}


def test_translation_project_tests_pass_learning_on_tensorflow(translation_project: Path
                                                               ) -> None:
    # They include BLEU against a hand-computed value, beam search beating greedy on a
    # scripted model, bad input, and a short run that must reach validation BLEU > 0.3
    # (an untrained model scores 0) before it translates raw text and a .txt file.
    result = own_tests(translation_project)
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in last_line(result.stdout) and "skipped" not in last_line(result.stdout)


def test_translation_trains_and_translates_on_jax(translation_project: Path,
                                                  tmp_path: Path) -> None:
    run = translation_project / "runs" / "jax"
    train_on_jax(translation_project, run, "data.max_rows=300", "predict.beam_width=2",
                 headline="validation bleu")
    assert 0.0 <= json.loads((run / "metrics.json").read_text())["final"]["bleu"] <= 1.0
    lines = tmp_path / "english.txt"
    lines.write_text("the dog saw a red ball\n\nmy cats do not eat the apples\n",
                     encoding="utf-8")
    table = tmp_path / "more.csv"
    table.write_text("source,note\nthe horse wants my old hat,x\n", encoding="utf-8")
    out = tmp_path / "translations"
    result = run_project(translation_project, "predict", "--run-dir", str(run),
                         "a small fox finds the book", str(lines), str(table), "--out", str(out),
                         backend="jax")
    assert result.returncode == 0, result.stderr[-2000:]
    with (out / "translations.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["text"] for row in rows] == ["a small fox finds the book",
                                             "the dog saw a red ball",
                                             "my cats do not eat the apples",
                                             "the horse wants my old hat"]
    assert not any("[" in row["translation"] for row in rows)
    assert "4 translation(s) (beam search) written" in result.stdout


def test_translation_missing_target_column_is_named(translation_project: Path,
                                                    tmp_path: Path) -> None:
    (tmp_path / "pairs").mkdir()
    (tmp_path / "pairs" / "train.csv").write_text("source,french\nhello,bonjour\n",
                                                  encoding="utf-8")
    result = run_project(translation_project, "train", "--run-dir", str(tmp_path / "r"),
                         "--set", f'data.dir="{tmp_path / "pairs"}"')
    assert result.returncode == 2
    assert "train.csv: no column 'target'" in last_line(result.stderr)
    assert "Traceback" not in result.stderr and not (tmp_path / "r" / "metrics.json").exists()


# --------------------------------------------------------------------------- causal_lm

@pytest.fixture(scope="module")
def chat_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("nlp_lm"), "shopbot", "nlp", task="causal_lm")


def test_causal_lm_project_tests_pass_learning_on_tensorflow(chat_project: Path) -> None:
    # They include causality of the model, chat truncation, top-k sampling, bad corpora, and
    # a short run whose validation perplexity must fall below the unigram model's.
    assert (chat_project / "data" / "train.txt").is_file()
    result = own_tests(chat_project)
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in last_line(result.stdout) and "skipped" not in last_line(result.stdout)


def test_causal_lm_trains_and_chats_on_jax(chat_project: Path, tmp_path: Path) -> None:
    run = chat_project / "runs" / "jax"
    train_on_jax(chat_project, run, "data.max_rows=200", headline="validation perplexity")
    final = json.loads((run / "metrics.json").read_text())["final"]
    assert final["perplexity"] > 1.0 and final["unigram_perplexity"] > 1.0
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    chat = subprocess.run([sys.executable, "-m", chat_project.name, "predict", "--run-dir",
                           str(run), "-", "--out", str(tmp_path / "chat"),
                           "--set", 'predict.mode="chat"'], cwd=chat_project,
                          env=env, input="hi there\nwhere is my order 4821?\n\nthanks, bye\n",
                          capture_output=True, text=True, timeout=600, check=False)
    assert chat.returncode == 0, chat.stderr[-2000:]
    transcript = (tmp_path / "chat" / "chat.txt").read_text(encoding="utf-8").splitlines()
    assert transcript[0] == "user: hi there" and transcript[2] == "user: where is my order 4821?"
    assert len(transcript) == 6 and all(line.startswith("assistant:") for line in transcript[1::2])
    assert "3 turn(s)" in chat.stdout


def test_causal_lm_non_utf8_corpus_is_named(chat_project: Path, tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "train.txt").write_bytes("très bien\n".encode("latin-1"))
    result = run_project(chat_project, "train", "--run-dir", str(tmp_path / "r"),
                         "--set", f'data.dir="{tmp_path / "corpus"}"')
    assert result.returncode == 2
    assert "train.txt is not UTF-8" in last_line(result.stderr)
