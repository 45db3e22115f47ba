"""The shared runtime's sweep and run-listing pieces, without Keras: the [tune.space]
parser, the runs table (read-back files are untrusted) and tracking's failure paths."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import runtime

config_module = runtime.load("config")
errors = runtime.load("errors")
rundir = runtime.load("rundir")
runs = runtime.load("runs")
tracking = runtime.load("tracking")
tune = runtime.load("tune")

CONFIG = '''\
[data]
dir = "data"

[model]
width = 32
hidden = [64, 32]
backbone = "small_cnn"

[augment]
mixup = 0.0

[train]
epochs = 3
learning_rate = 0.003
dropout = 0.3
monitor = "val_accuracy"
monitor_mode = "max"

[runtime]
backend = "tensorflow"
precision = "auto"
seed = 1
tracking = "none"
tracking_uri = ""

[tune]
strategy = "random"
max_trials = 6
trial_epochs = 0

[tune.space]
"train.learning_rate" = "log:1e-4..1e-2"
"model.width" = [16, 32, 64]
"augment.mixup" = "0.0..0.4"
'''


@pytest.fixture
def config(tmp_path: Path) -> dict:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    return config_module.load_config(path)


def test_the_space_reads_choices_and_linear_and_log_ranges(config: dict) -> None:
    rate, width, mixup = tune.parse_space(config)
    assert (rate.key, rate.low, rate.high, rate.log, rate.integer) == (
        "train.learning_rate", 1e-4, 1e-2, True, False)
    assert width.choices == (16, 32, 64)
    assert (mixup.low, mixup.high, mixup.log) == (0.0, 0.4, False)


def test_a_list_valued_key_is_searched_over_lists(config: dict) -> None:
    dim = tune.parse_dimension(config, "model.hidden", [[64], [128, 64]])
    assert dim.labels() == ["[64]", "[128, 64]"]  # KerasTuner's Choice takes scalars
    assert dim.value("[128, 64]") == [128, 64]


@pytest.mark.parametrize(("key", "spec", "message"), [
    ("model.widht", [16], "'model.widht': no such config key"),
    ("train.learning_rate", "1e-4-1e-2", "is not a range"),
    ("train.learning_rate", "log:0..1e-2", "a log range must start above 0"),
    ("train.learning_rate", "0.1..0.01", "must go from low to high"),
    ("train.learning_rate", "-1..0.1", "learning_rate must be more than 0"),
    ("train.dropout", "0.0..1.5", "dropout must be at least 0 and less than 1"),
    ("model.backbone", "0..1", "a range needs a numeric key"),
    ("model.width", [16, "wide"], "width must be an integer"),
    ("model.width", "8.5..64", "give whole-number ends"),
    ("model.width", [], "the list of values is empty"),
    ("model.width", 16, "expected a list of values or a range"),
    ("runtime.seed", [1, 2], "not tunable"),
    ("data.dir", ["a", "b"], "not tunable"),
    ("train.monitor", ["val_loss"], "not tunable"),
])
def test_a_bad_space_entry_is_one_line_naming_it(config: dict, key: str, spec: object,
                                                 message: str) -> None:
    with pytest.raises(errors.ConfigError) as raised:
        tune.parse_dimension(config, key, spec)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_an_unknown_strategy_and_an_empty_space_are_refused(config: dict) -> None:
    bad = {**config, "tune": {**config["tune"], "strategy": "grid"}}
    with pytest.raises(errors.ConfigError, match="tune.strategy must be one of random"):
        tune.check_tune_config(bad)
    empty = {**config, "tune": {**config["tune"], "space": {}}}
    with pytest.raises(errors.ConfigError, match=r"\[tune.space\] is empty"):
        tune.check_tune_config(empty)


def test_resume_keeps_the_sweep_config_except_its_budget() -> None:
    tune.check_resume_overrides(["tune.max_trials=9"])
    with pytest.raises(errors.ConfigError, match="only tune.max_trials can change"):
        tune.check_resume_overrides(["train.epochs=9"])


def test_dotted_space_keys_survive_a_toml_round_trip(config: dict, tmp_path: Path) -> None:
    # best.toml and SWEEP/config.toml are written with dump_toml and read by train --config
    path = tmp_path / "again.toml"
    path.write_text(config_module.dump_toml(config))
    assert config_module.load_config(path) == config


def test_trial_overrides_set_the_values_and_the_trial_epochs(config: dict,
                                                             tmp_path: Path) -> None:
    dims = tune.parse_space(config)
    sweep = tune.Sweep(tmp_path, tmp_path / "config.toml", config, dims)
    raw = {"train.learning_rate": 0.001, "model.width": 64, "augment.mixup": 0.25}
    assert sweep.overrides(raw) == ["train.learning_rate=0.001", "model.width=64",
                                    "augment.mixup=0.25"]
    assert sweep.overrides({**raw, "tuner/epochs": 2})[-1] == "train.epochs=2"


def _run(root: Path, name: str, config_text: str, metrics: object) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text(config_text)
    if metrics is not None:
        raw = metrics if isinstance(metrics, str) else json.dumps(metrics)
        (folder / "metrics.json").write_text(raw)
    return folder


def _metrics(value: float, **extra: object) -> dict:
    return {"monitor": "val_accuracy", "epochs_completed": 3, "train_seconds": 12.4,
            "best": {"epoch": 2, "val_accuracy": value}, "final": {"accuracy": value},
            **extra}


def test_runs_lists_runs_and_sweep_trials_with_what_changed(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(CONFIG)
    root = tmp_path / "runs"
    _run(root, "20260101-000000", CONFIG.replace('precision = "auto"',
                                                 'precision = "float32"'), _metrics(0.5))
    sweep = root / "sweep-1"
    _run(sweep, "trial-0", CONFIG.replace("width = 32", "width = 64"), _metrics(0.75))
    _run(sweep, "trial-1", CONFIG, {"monitor": "val_accuracy", "epochs_completed": 1,
                                    "best": {"epoch": 1, "val_accuracy": 0.2}})
    (sweep / "config.toml").write_text(CONFIG)  # the sweep's own config is not a run
    table = runs.list_runs(root, tmp_path / "config.toml").splitlines()
    assert table[0].split()[:6] == ["run", "monitor", "best", "epoch", "epochs", "time"]
    assert len(table) == 4
    first, trial0, trial1 = (line.split() for line in table[1:])
    # the runtime's resolved precision is no choice of the user's: nothing changed
    assert first == ["20260101-000000", "val_accuracy", "0.5000", "2", "3", "12s"]
    assert trial0[:3] == ["sweep-1/trial-0", "val_accuracy", "0.7500"]
    assert trial0[-1] == "model.width=64"
    assert trial1[-1] == "unfinished"


@pytest.mark.parametrize("metrics", [
    "{not json",
    "[1, 2]",
    {"monitor": "val\x1b[2Jx", "best": {"epoch": "two", "val_accuracy": "high"},
     "train_seconds": -5, "epochs_completed": 1.5},
    {"monitor": "val_accuracy", "best": {"epoch": 1, "val_accuracy": math.inf}},
])
def test_runs_shows_a_run_with_bad_files_without_failing(tmp_path: Path, metrics: object
                                                         ) -> None:
    root = tmp_path / "runs"
    _run(root, "good", CONFIG, _metrics(0.5))
    bad = _run(root, "bad", CONFIG, metrics if not isinstance(metrics, dict)
               else json.dumps(metrics).replace("Infinity", "1e999"))
    _run(root, "broken-config", "[train\n", _metrics(0.5))
    table = runs.list_runs(root, tmp_path / "absent.toml")
    lines = {line.split()[0]: line for line in table.splitlines()[1:]}
    assert "0.5000" in lines["good"]
    assert "unreadable" in lines["broken-config"] and "not valid TOML" in lines["broken-config"]
    assert "\x1b" not in table and "inf" not in lines[bad.name].lower().replace("infinite", "")
    assert "high" not in lines[bad.name] and "-5" not in lines[bad.name]


def test_runs_skips_symlinked_folders(tmp_path: Path) -> None:
    elsewhere = _run(tmp_path / "elsewhere", "secret", CONFIG, _metrics(0.9))
    root = tmp_path / "runs"
    root.mkdir()
    (root / "link").symlink_to(elsewhere)
    assert runs.list_runs(root, tmp_path / "config.toml").startswith("no runs in")


def test_tracking_mlflow_without_mlflow_names_the_extra(config: dict,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: None)
    tracked = {**config, "runtime": {**config["runtime"], "tracking": "mlflow"}}
    with pytest.raises(errors.ConfigError, match=r"pip install -e \.\[mlflow\]"):
        tracking.check(tracked)
    tracking.check(config)  # "none" needs nothing


def test_a_tracking_store_that_fails_warns_and_stops_tracking(
        config: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("mlflow")
    bad = {**config, "runtime": {**config["runtime"], "tracking": "mlflow",
                                 "tracking_uri": "nosuchscheme://nowhere"}}
    tracker = tracking.start(bad, bad, tmp_path / "run", {"template": "t"})
    assert not tracker.active
    assert capsys.readouterr().out.startswith("warning: tracking: starting an MLflow run")

    def broken() -> None:
        raise OSError("disk full")

    live = tracking.Tracker(client=object(), run_id="x")
    live.call("logging epoch metrics", broken)
    assert not live.active
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "disk full" in out and "training goes on" in out


def test_a_finished_trial_is_unlocked_while_the_sweep_stays_locked(tmp_path: Path) -> None:
    sweep, trial = tmp_path / "sweep", tmp_path / "sweep" / "trial-0"
    trial.mkdir(parents=True)
    rundir.hold_lock(sweep, "tune")
    rundir.hold_lock(trial, "train")
    try:
        rundir.release_lock(trial)
        assert not (trial / ".lock").exists() and (sweep / ".lock").is_file()
        rundir.hold_lock(trial, "evaluate")  # another command may now take the trial
    finally:
        rundir.release_locks()
    assert not (sweep / ".lock").exists() and not (trial / ".lock").exists()


def test_a_worker_without_a_chief_gives_up_with_one_line(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tune, "CHIEF_WAIT_SECONDS", 0)
    with pytest.raises(errors.ProjectError, match="start the chief .KERASTUNER_TUNER_ID=chief"):
        tune._wait_for_chief(tmp_path / "sweep")
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "config.toml").write_text(CONFIG)
    assert tune._wait_for_chief(tmp_path / "sweep")["tune"]["max_trials"] == 6


class _FailingStore:
    """An MLflow client whose every call fails, as a full disk or a dead server would."""

    def __getattr__(self, name: str) -> object:
        def fail(*args: object, **kwargs: object) -> None:
            raise OSError(f"{name}: disk full")
        return fail


def test_finishing_a_run_never_raises_when_tracking_is_off_or_fails(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    (run / "plots").mkdir(parents=True)
    for name in ("metrics.json", "config.toml", "history.csv"):
        (run / name).write_text("{}" if name.endswith(".json") else "")
    tracking.Tracker().finish(run, "FINISHED")  # tracking off: nothing to do, no error
    assert capsys.readouterr().out == ""
    failing = tracking.Tracker(client=_FailingStore(), run_id="x")
    failing.finish(run, "FINISHED")  # the first failure stops tracking; the rest is skipped
    out = capsys.readouterr().out
    assert not failing.active and out.count("warning: tracking:") == 1, out
