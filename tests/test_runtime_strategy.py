"""The strategy module's decisions, on made-up device descriptions (no GPU needed)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from runtime import load

strategy = load("strategy")
errors = load("errors")

CPU = strategy.Device("cpu", "CPU")


def gpu(cc: tuple[int, int], name: str = "NVIDIA H100") -> Any:
    return strategy.Device("gpu", name, cc)


def config(**runtime: Any) -> dict[str, Any]:
    base = {"precision": "auto", "jit_compile": "auto", "distribute": "auto",
            "steps_per_execution": "auto", "seed": 1, "memory_growth": True, "tf32": False}
    base.update(runtime)
    return {"runtime": base,
            "train": {"batch_size": 32, "learning_rate": 0.001, "lr_scaling": "linear"}}


def plan_for(backend: str, devices: tuple[Any, ...], hosts: int = 1, **runtime: Any) -> Any:
    env = strategy.Environment(backend, devices, num_hosts=hosts)
    return strategy.choose_plan(config(**runtime), env)


@pytest.mark.parametrize(("cc", "expected"), [
    ((9, 0), "mixed_bfloat16"), ((8, 0), "mixed_bfloat16"), ((8, 6), "mixed_bfloat16"),
    ((7, 0), "mixed_float16"), ((7, 5), "mixed_float16"), ((6, 1), "float32"),
])
def test_precision_follows_compute_capability(cc: tuple[int, int], expected: str) -> None:
    assert plan_for("tensorflow", (gpu(cc),)).precision == expected


def test_cpu_gets_float32_no_xla_on_tensorflow_and_xla_on_jax() -> None:
    tf_plan = plan_for("tensorflow", (CPU,))
    assert (tf_plan.precision, tf_plan.jit_compile, tf_plan.distribution) == \
        ("float32", False, "none")
    assert plan_for("jax", (CPU,)).jit_compile is True


def test_gpu_gets_xla_on_tensorflow() -> None:
    assert plan_for("tensorflow", (gpu((8, 0)),)).jit_compile is True


def test_mixed_gpus_use_the_weakest_capability() -> None:
    assert plan_for("tensorflow", (gpu((9, 0)), gpu((7, 0), "V100"))).precision == \
        "mixed_float16"


def test_several_gpus_distribute_and_scale_batch_and_learning_rate() -> None:
    tf_plan = plan_for("tensorflow", tuple(gpu((8, 0)) for _ in range(4)))
    assert tf_plan.distribution == "mirrored"
    assert (tf_plan.replicas, tf_plan.global_batch) == (4, 128)
    assert tf_plan.learning_rate == pytest.approx(0.004)
    jax_plan = plan_for("jax", tuple(gpu((9, 0)) for _ in range(8)))
    assert (jax_plan.distribution, jax_plan.global_batch) == ("data_parallel", 256)


def test_several_hosts_use_jax_distributed() -> None:
    plan = plan_for("jax", (gpu((8, 0)), gpu((8, 0))), hosts=3)
    assert (plan.distribution, plan.replicas, plan.global_batch) == ("data_parallel", 6, 192)
    assert plan.learning_rate == pytest.approx(0.006)


def test_several_hosts_on_tensorflow_are_refused_with_the_reason() -> None:
    # Keras 3 cannot fit() under MultiWorkerMirroredStrategy (keras-team/keras#20585).
    with pytest.raises(errors.ConfigError, match="20585"):
        plan_for("tensorflow", (gpu((8, 0)),), hosts=2)
    with pytest.raises(errors.ConfigError, match="KERAS_BACKEND=jax"):
        plan_for("tensorflow", (CPU,), distribute="multi_worker")


def test_explicit_choices_win_and_wrong_ones_are_named() -> None:
    assert plan_for("tensorflow", (gpu((9, 0)),), precision="float32").precision == "float32"
    assert plan_for("tensorflow", (gpu((9, 0)),), jit_compile=False).jit_compile is False
    with pytest.raises(errors.ConfigError, match="runtime.precision"):
        plan_for("tensorflow", (CPU,), precision="fp8")
    with pytest.raises(errors.ConfigError, match="not available on jax"):
        plan_for("jax", (CPU,), distribute="mirrored")


def test_bfloat16_on_volta_is_allowed_with_a_note() -> None:
    plan = plan_for("tensorflow", (gpu((7, 0)),), precision="mixed_bfloat16")
    assert plan.precision == "mixed_bfloat16"
    assert any("emulated" in note for note in plan.notes)


def test_steps_per_execution_auto() -> None:
    assert plan_for("jax", (CPU,)).steps_per_execution == 1
    assert plan_for("jax", (gpu((9, 0)),)).steps_per_execution == 16
    assert plan_for("jax", (gpu((9, 0)),), steps_per_execution=4).steps_per_execution == 4


def test_cluster_from_tf_config_and_slurm() -> None:
    tf_config = {"cluster": {"worker": ["a:1", "b:1", "c:1"]},
                 "task": {"type": "worker", "index": 2}}
    hosts, index, coordinator, source = strategy._cluster_from_environment(
        {"TF_CONFIG": json.dumps(tf_config)})
    assert (hosts, index, coordinator, source) == (3, 2, "a:1", "TF_CONFIG")
    hosts, index, coordinator, source = strategy._cluster_from_environment(
        {"SLURM_NTASKS": "4", "SLURM_PROCID": "1", "SLURM_JOB_NODELIST": "gpu[01-04]"})
    assert (hosts, index, coordinator, source) == (4, 1, "gpu01:12345", "SLURM")
    assert strategy.first_slurm_host("gpu[07-09,12],cpu1") == "gpu07"
    assert strategy.first_slurm_host("node3,node4") == "node3"
    assert strategy._cluster_from_environment({})[:2] == (1, 0)
    with pytest.raises(errors.ConfigError, match="TF_CONFIG"):
        strategy._cluster_from_environment({"TF_CONFIG": "{not json"})


def test_cluster_from_keras_distribution_variables() -> None:
    """keras.distribution.initialize's variables; SLURM fills in what they leave out."""
    cluster = strategy._cluster_from_environment
    keras_env = {"KERAS_DISTRIBUTION_NUM_PROCESSES": "2", "KERAS_DISTRIBUTION_PROCESS_ID": "1",
                 "KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1:1234,10.0.0.2:2345"}
    assert cluster(keras_env) == (2, 1, "10.0.0.1:1234", "KERAS_DISTRIBUTION")
    # The count may come from the address list alone.
    no_count = {k: v for k, v in keras_env.items() if k != "KERAS_DISTRIBUTION_NUM_PROCESSES"}
    assert cluster(no_count)[:3] == (2, 1, "10.0.0.1:1234")
    # SLURM gives the count and this task's id; the sbatch script gives the address.
    slurm = {"SLURM_NTASKS": "3", "SLURM_PROCID": "2", "SLURM_JOB_NODELIST": "gpu[01-03]"}
    assert cluster({**slurm, "KERAS_DISTRIBUTION_JOB_ADDRESSES": "gpu01:999"}) == (
        3, 2, "gpu01:999", "SLURM")
    # Explicit Keras variables win over SLURM's.
    assert cluster({**slurm, **keras_env})[:2] == (2, 1)
    with pytest.raises(errors.ConfigError, match="KERAS_DISTRIBUTION_PROCESS_ID"):
        cluster({"KERAS_DISTRIBUTION_NUM_PROCESSES": "2"})
    with pytest.raises(errors.ConfigError, match="0..1"):
        cluster({**keras_env, "KERAS_DISTRIBUTION_PROCESS_ID": "2"})
    with pytest.raises(errors.ConfigError, match="whole number"):
        cluster({**keras_env, "KERAS_DISTRIBUTION_NUM_PROCESSES": "two"})
    with pytest.raises(errors.ConfigError, match="lists 2 addresses"):
        cluster({**keras_env, "KERAS_DISTRIBUTION_NUM_PROCESSES": "3"})
    assert cluster({"KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1:1234"})[:2] == (1, 0)


def test_retired_appgen_variables_are_ignored_with_one_line() -> None:
    old = {"APPGEN_NUM_PROCESSES": "2", "APPGEN_PROCESS_ID": "1",
           "APPGEN_COORDINATOR": "127.0.0.1:1234"}
    assert strategy._cluster_from_environment(old) == (1, 0, None, "local")
    line = strategy.retired_variables(old)
    assert line is not None and "\n" not in line
    for replacement in ("APPGEN_NUM_PROCESSES -> KERAS_DISTRIBUTION_NUM_PROCESSES",
                        "APPGEN_PROCESS_ID -> KERAS_DISTRIBUTION_PROCESS_ID",
                        "APPGEN_COORDINATOR -> KERAS_DISTRIBUTION_JOB_ADDRESSES"):
        assert replacement in line
    assert strategy.retired_variables({"KERAS_DISTRIBUTION_PROCESS_ID": "0"}) is None


def test_a_run_names_the_retired_variable_it_finds(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("KERAS_DISTRIBUTION_NUM_PROCESSES", "KERAS_DISTRIBUTION_PROCESS_ID",
                 "KERAS_DISTRIBUTION_JOB_ADDRESSES", "SLURM_NTASKS", "TF_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APPGEN_NUM_PROCESSES", "2")
    env = strategy.describe_environment("jax")
    assert (env.num_hosts, env.cluster_source) == (1, "local")
    err = [line for line in capsys.readouterr().err.splitlines() if "APPGEN_" in line]
    assert err == ["warning: ignored, no longer read; set Keras' variables instead: "
                   "APPGEN_NUM_PROCESSES -> KERAS_DISTRIBUTION_NUM_PROCESSES"]


def test_banner_names_every_decision() -> None:
    text = strategy.format_plan(plan_for("tensorflow", (gpu((9, 0), "NVIDIA H200"),) * 2))
    for fragment in ("2 x NVIDIA H200", "compute capability 9.0", "mixed_bfloat16", "XLA on",
                     "mirrored", "64 global"):
        assert fragment in text


def test_xla_fallback_names_the_failing_layer() -> None:
    import os

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    import numpy as np

    if keras.backend.backend() != "tensorflow":
        pytest.skip("XLA probing is TensorFlow's; JAX always compiles")
    import tensorflow as tf

    @keras.saving.register_keras_serializable(package="test")
    class NumpyOp(keras.layers.Layer):
        def call(self, x: Any) -> Any:  # numpy_function cannot be compiled by XLA
            y = tf.numpy_function(lambda a: a * 2, [x], tf.float32)
            y.set_shape(x.shape)
            return y

        def compute_output_shape(self, shape: Any) -> Any:
            return shape

    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(4, name="fine")(inputs)
    outputs = NumpyOp(name="host_numpy")(hidden)
    model = keras.Model(inputs, outputs)
    failure = strategy.xla_failure(model, np.ones((2, 4), np.float32))
    assert failure is not None and "host_numpy" in failure
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert strategy.xla_failure(plain, np.ones((2, 4), np.float32)) is None
