"""The one place that decides how training runs: precision, XLA, distribution.

Three steps, so the decisions can be tested without the hardware:

1. ``describe_environment()`` asks the backend what devices and hosts exist.
2. ``choose_plan(config, env)`` is a pure function from config + environment to a
   ``Plan`` (tests call it with made-up environments).
3. ``apply_plan(plan)`` sets the Keras dtype policy, seeds, TF memory growth and
   TF32, and the distribution; it returns the scope to build the model in.

``KERAS_BACKEND`` must be set before this module is imported (``__main__`` does it).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from .config import Config, choice, get
from .errors import ConfigError

PRECISIONS = ("auto", "mixed_bfloat16", "mixed_float16", "float32")
DISTRIBUTIONS = ("auto", "none", "mirrored", "multi_worker", "data_parallel")


@dataclass(frozen=True)
class Device:
    """One accelerator or CPU as the backend reports it."""

    kind: str  # "gpu", "tpu" or "cpu"
    name: str = ""
    compute_capability: tuple[int, int] | None = None


@dataclass(frozen=True)
class Environment:
    """What this process can see: backend, local devices, and the cluster it is part of."""

    backend: str
    devices: tuple[Device, ...]
    num_hosts: int = 1
    host_index: int = 0
    coordinator: str | None = None  # "host:port" of process 0 for jax.distributed
    cluster_source: str = "local"  # "local", "TF_CONFIG", "SLURM" or "KERAS_DISTRIBUTION"

    @property
    def accelerators(self) -> tuple[Device, ...]:
        return tuple(d for d in self.devices if d.kind in ("gpu", "tpu"))


@dataclass(frozen=True)
class Plan:
    """Everything decided for one run; recorded in the run's config.toml."""

    backend: str
    precision: str
    jit_compile: bool
    distribution: str
    replicas: int
    hosts: int
    host_index: int
    per_replica_batch: int
    global_batch: int
    learning_rate: float
    steps_per_execution: int
    seed: int
    memory_growth: bool
    tf32: bool
    device_summary: str
    coordinator: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_chief(self) -> bool:
        """Only the chief process writes checkpoints, metrics and plots."""
        return self.host_index == 0


def describe_environment(backend: str | None = None) -> Environment:
    """Ask the active backend for its devices and read the cluster description.

    On JAX with several processes this also joins the cluster
    (``keras.distribution.initialize``), which must happen before JAX lists devices.
    """
    backend = backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    retired = retired_variables(os.environ)
    if retired:
        print(f"warning: {retired}", file=sys.stderr)
    hosts, index, coordinator, source = _cluster_from_environment(os.environ)
    if backend == "tensorflow":
        devices = _tensorflow_devices()
    elif backend == "jax":
        if hosts > 1:
            _join_jax_cluster(coordinator, hosts, index)
        devices = _jax_devices()
    else:
        # torch: Keras runs on it, but these pipelines and tests cover TensorFlow and JAX only.
        raise ConfigError(f"runtime.backend (or KERAS_BACKEND) must be tensorflow or jax; "
                          f"got {backend!r}")
    return Environment(backend, devices, hosts, index, coordinator, source)


def _join_jax_cluster(coordinator: str | None, hosts: int, index: int) -> None:
    import jax
    import keras

    if coordinator is None:
        raise ConfigError(f"several JAX processes need the address of process 0: set "
                          f"{JOB_ADDRESSES}=host:port")
    # CPU-only processes need a collectives implementation to all-reduce: gloo is the
    # default of recent JAX (0.10 here), not of every release the projects accept (>=0.4.30).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    # jax.distributed.initialize, then the same random seed on every process.
    keras.distribution.initialize(job_addresses=coordinator, num_processes=hosts,
                                  process_id=index)


def choose_plan(config: Config, env: Environment) -> Plan:
    """Decide precision, XLA, distribution and batch sizes. Pure: no device access."""
    notes: list[str] = []
    gpus = [d for d in env.accelerators if d.kind == "gpu"]
    precision = _choose_precision(config, env, gpus, notes)
    jit_compile = _choose_jit(config, env, notes)
    distribution = _choose_distribution(config, env)
    local = max(1, len(env.accelerators)) if distribution != "none" else 1
    replicas = local * (env.num_hosts if distribution in ("multi_worker", "data_parallel") else 1)

    per_replica = int(get(config, "train.batch_size"))
    if per_replica <= 0:
        raise ConfigError(f"train.batch_size must be positive; got {per_replica}")
    learning_rate = float(get(config, "train.learning_rate"))
    scaling = choice(config, "train.lr_scaling", ("linear", "sqrt", "none"))
    factor = {"linear": replicas, "sqrt": replicas**0.5, "none": 1}[scaling]
    if replicas > 1 and scaling != "none":
        notes.append(f"learning rate x{factor:g} for {replicas} replicas ({scaling} scaling)")

    spe = get(config, "runtime.steps_per_execution")
    if spe == "auto":
        # Small steps on a GPU are dominated by launch and host overhead; on the CPU
        # per-step callbacks are cheap and keep progress bars honest.
        spe = 16 if env.accelerators else 1
    if not isinstance(spe, int) or isinstance(spe, bool) or spe < 1:
        raise ConfigError(f"runtime.steps_per_execution must be 'auto' or >= 1; got {spe!r}")

    return Plan(
        backend=env.backend,
        precision=precision,
        jit_compile=jit_compile,
        distribution=distribution,
        replicas=replicas,
        hosts=env.num_hosts,
        host_index=env.host_index,
        per_replica_batch=per_replica,
        global_batch=per_replica * replicas,
        learning_rate=learning_rate * factor,
        steps_per_execution=spe,
        seed=int(get(config, "runtime.seed")),
        memory_growth=bool(get(config, "runtime.memory_growth")),
        tf32=bool(get(config, "runtime.tf32")),
        device_summary=_summarise_devices(env),
        coordinator=env.coordinator,
        notes=tuple(notes),
    )


def _choose_precision(config: Config, env: Environment, gpus: list[Device],
                      notes: list[str]) -> str:
    asked = choice(config, "runtime.precision", PRECISIONS)
    capability = min((g.compute_capability or (0, 0) for g in gpus), default=None)
    if asked != "auto":
        if asked == "mixed_bfloat16" and capability is not None and capability < (8, 0):
            major, minor = capability
            notes.append(f"bfloat16 is emulated on compute capability {major}.{minor} and will "
                         "be slow; mixed_float16 suits this GPU")
        if asked.startswith("mixed") and not env.accelerators:
            notes.append(f"{asked} on the CPU is usually slower than float32")
        return asked
    if any(d.kind == "tpu" for d in env.accelerators):
        return "mixed_bfloat16"
    if capability is None:
        return "float32"
    if capability >= (8, 0):
        return "mixed_bfloat16"
    if capability >= (7, 0):
        return "mixed_float16"  # Keras wraps the optimizer in a LossScaleOptimizer
    notes.append(f"compute capability {capability[0]}.{capability[1]} has no fast half"
                 " precision; using float32")
    return "float32"


def _choose_jit(config: Config, env: Environment, notes: list[str]) -> bool:
    asked = get(config, "runtime.jit_compile")
    if asked not in ("auto", True, False):
        raise ConfigError(f"runtime.jit_compile must be auto, true or false; got {asked!r}")
    if env.backend == "jax":
        if asked is False:
            notes.append("jit_compile=false on JAX runs every step eagerly (debugging only)")
            return False
        return True  # JAX always compiles with XLA
    if asked == "auto":
        # XLA pays for itself on GPUs; on the CPU TensorFlow's own kernels are as fast
        # and start without the compile time.
        return bool(env.accelerators)
    return bool(asked)


def _choose_distribution(config: Config, env: Environment) -> str:
    asked = choice(config, "runtime.distribute", DISTRIBUTIONS)
    allowed = {"tensorflow": ("none", "mirrored", "multi_worker"),
               "jax": ("none", "data_parallel")}[env.backend]
    if asked == "multi_worker" or (asked == "auto" and env.backend == "tensorflow"
                                   and env.num_hosts > 1):
        # Keras 3 (up to 3.15 at least) fails inside fit() under MultiWorkerMirroredStrategy:
        # keras-team/keras#20585, and its multi-worker "mean" reduction of scalar logs.
        raise ConfigError("training on several hosts with TensorFlow is not supported by "
                          "Keras 3 yet (keras-team/keras#20585); use KERAS_BACKEND=jax, which "
                          "scales over hosts with jax.distributed")
    if asked == "auto":
        if env.backend == "jax" and (env.num_hosts > 1 or len(env.accelerators) > 1):
            return "data_parallel"
        if env.backend == "tensorflow" and len(env.accelerators) > 1:
            return "mirrored"
        return "none"
    if asked not in allowed:
        raise ConfigError(f"runtime.distribute={asked} is not available on {env.backend}; "
                          f"choose from {', '.join(('auto',) + allowed)}")
    return asked


def _summarise_devices(env: Environment) -> str:
    if not env.accelerators:
        return "CPU"
    first = env.accelerators[0]
    cc = first.compute_capability
    cc_text = f" (compute capability {cc[0]}.{cc[1]})" if cc else ""
    return f"{len(env.accelerators)} x {first.name or first.kind.upper()}{cc_text}"


# keras.distribution.initialize's own variables; SLURM's fill in what they leave unset.
JOB_ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
NUM_PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"
DEFAULT_COORDINATOR_PORT = 12345  # [launch] coordinator_port's default
# Variables earlier versions of these projects read, and what replaces each.
RETIRED = {"APPGEN_NUM_PROCESSES": NUM_PROCESSES, "APPGEN_PROCESS_ID": PROCESS_ID,
           "APPGEN_COORDINATOR": JOB_ADDRESSES,
           "APPGEN_COORDINATOR_PORT": f"{JOB_ADDRESSES} (host:port)"}


def retired_variables(environ: os._Environ[str] | dict[str, str]) -> str | None:
    """One line naming the retired variables that are set and their replacements."""
    found = [f"{old} -> {new}" for old, new in RETIRED.items() if old in environ]
    if not found:
        return None
    return f"ignored, no longer read; set Keras' variables instead: {', '.join(found)}"


def _env_int(environ: os._Environ[str] | dict[str, str], name: str) -> int:
    try:
        return int(environ[name])
    except ValueError:
        raise ConfigError(f"{name} must be a whole number; got {environ[name]!r}") from None


def _cluster_from_environment(environ: os._Environ[str] | dict[str, str]
                              ) -> tuple[int, int, str | None, str]:
    """Return (hosts, this host's index, coordinator address, source).

    TF_CONFIG first, then SLURM (unless ``KERAS_DISTRIBUTION_NUM_PROCESSES`` or
    ``_PROCESS_ID`` is set), then the ``KERAS_DISTRIBUTION_*`` variables; the coordinator
    is the first of ``KERAS_DISTRIBUTION_JOB_ADDRESSES`` (comma-separated host:port).
    """
    tf_config = environ.get("TF_CONFIG")
    if tf_config:
        try:
            spec = json.loads(tf_config)
            workers = list(spec["cluster"].get("chief", [])) + list(spec["cluster"]["worker"])
            task = spec["task"]
            index = int(task["index"]) + (1 if task["type"] == "worker"
                                          and "chief" in spec["cluster"] else 0)
        except (ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"TF_CONFIG is not a valid cluster description: {err}") from None
        return len(workers), index, workers[0], "TF_CONFIG"
    addresses = [a.strip() for a in environ.get(JOB_ADDRESSES, "").split(",") if a.strip()]
    explicit = NUM_PROCESSES in environ or PROCESS_ID in environ
    if (not explicit and "SLURM_PROCID" in environ
            and _env_int({"SLURM_NTASKS": "1", **environ}, "SLURM_NTASKS") > 1):
        coordinator = addresses[0] if addresses else (
            f"{first_slurm_host(environ.get('SLURM_JOB_NODELIST', 'localhost'))}:"
            f"{DEFAULT_COORDINATOR_PORT}")
        return (_env_int(environ, "SLURM_NTASKS"), _env_int(environ, "SLURM_PROCID"),
                coordinator, "SLURM")
    hosts = _env_int(environ, NUM_PROCESSES) if NUM_PROCESSES in environ else len(addresses)
    if hosts <= 1 and not explicit:
        return 1, 0, None, "local"
    if hosts < 1:
        raise ConfigError(f"{NUM_PROCESSES} must be 1 or more (with {PROCESS_ID} set); "
                          f"got {environ.get(NUM_PROCESSES, 'nothing')!r}")
    if len(addresses) > 1 and len(addresses) != hosts:
        raise ConfigError(f"{JOB_ADDRESSES} lists {len(addresses)} addresses but "
                          f"{NUM_PROCESSES} is {hosts}")
    if hosts > 1 and PROCESS_ID not in environ:
        raise ConfigError(f"{hosts} processes: set {PROCESS_ID} (0..{hosts - 1}) in each")
    index = _env_int(environ, PROCESS_ID) if PROCESS_ID in environ else 0
    if not 0 <= index < hosts:
        raise ConfigError(f"{PROCESS_ID}={index} with {NUM_PROCESSES}={hosts}: the id must be "
                          f"0..{hosts - 1}")
    return hosts, index, addresses[0] if addresses else None, "KERAS_DISTRIBUTION"


def first_slurm_host(nodelist: str) -> str:
    """The first host of a SLURM node list: ``gpu[07-09,12],cpu1`` -> ``gpu07``."""
    head = nodelist.split(",")[0] if "[" not in nodelist.split(",")[0] else nodelist
    if "[" not in head:
        return head
    prefix, _, ranges = head.partition("[")
    return prefix + ranges.split(",")[0].split("-")[0].rstrip("]")


def _tensorflow_devices() -> tuple[Device, ...]:
    import tensorflow as tf

    devices = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        devices.append(Device("gpu", details.get("device_name", gpu.name),
                              details.get("compute_capability")))
    return tuple(devices) or (Device("cpu", "CPU"),)


def _jax_devices() -> tuple[Device, ...]:
    import jax

    devices = []
    for device in jax.local_devices():
        if device.platform == "gpu":
            cc = getattr(device, "compute_capability", None)
            major_minor = tuple(int(p) for p in str(cc).split(".")[:2]) if cc else None
            devices.append(Device("gpu", device.device_kind, major_minor))  # type: ignore[arg-type]
        elif device.platform == "tpu":
            devices.append(Device("tpu", device.device_kind))
    return tuple(devices) or (Device("cpu", "CPU"),)


def apply_plan(plan: Plan) -> contextlib.AbstractContextManager[Any]:
    """Set precision, seeds and distribution; return the scope to build models in."""
    tf_strategy = None
    import keras

    if plan.backend == "tensorflow":
        import tensorflow as tf

        for gpu in tf.config.list_physical_devices("GPU"):
            with contextlib.suppress(RuntimeError):  # already initialised: keep going
                tf.config.experimental.set_memory_growth(gpu, plan.memory_growth)
        tf.config.experimental.enable_tensor_float_32_execution(plan.tf32)
    elif plan.backend == "jax":
        import jax

        jax.config.update("jax_default_matmul_precision", "tensorfloat32" if plan.tf32
                          else "highest")
    keras.utils.set_random_seed(plan.seed)
    keras.mixed_precision.set_global_policy(plan.precision)

    if plan.distribution == "mirrored":
        import tensorflow as tf

        tf_strategy = tf.distribute.MirroredStrategy()
    if plan.distribution == "data_parallel":
        distribution = keras.distribution.DataParallel()
        # Each process feeds its own slice of every global batch (pipeline.set_process_shard).
        distribution.auto_shard_dataset = False
        keras.distribution.set_distribution(distribution)
    if plan.hosts > 1:
        from .pipeline import set_process_shard

        set_process_shard(plan.host_index, plan.hosts)
    return tf_strategy.scope() if tf_strategy else contextlib.nullcontext()


def weights_fingerprint(model: Any) -> dict[str, Any]:
    """A digest of every weight, so workers can show they ended in sync."""
    import hashlib

    import numpy as np

    digest = hashlib.sha256()
    total = 0.0
    for weight in model.get_weights():
        array = np.ascontiguousarray(np.asarray(weight, dtype=np.float32))
        digest.update(array.tobytes())
        total += float(np.abs(array).sum())
    return {"sha256": digest.hexdigest(), "abs_sum": total}


def resolve_config(config: Config, plan: Plan) -> Config:
    """Copy of ``config`` with every ``auto`` runtime value replaced by the decision."""
    resolved = {section: dict(values) if isinstance(values, dict) else values
                for section, values in config.items()}
    runtime = resolved["runtime"]
    runtime.update(backend=plan.backend, precision=plan.precision,
                   jit_compile=plan.jit_compile, distribute=plan.distribution,
                   steps_per_execution=plan.steps_per_execution)
    return resolved


def format_plan(plan: Plan) -> str:
    """The start-of-training banner."""
    lines = [
        f"backend {plan.backend} on {plan.device_summary}",
        f"precision {plan.precision}, XLA {'on' if plan.jit_compile else 'off'}, "
        f"distribution {plan.distribution} ({plan.replicas} replica(s) on {plan.hosts} host(s))",
        f"batch {plan.per_replica_batch} per replica = {plan.global_batch} global, "
        f"learning rate {plan.learning_rate:g}, steps_per_execution {plan.steps_per_execution}",
    ]
    lines += [f"note: {note}" for note in plan.notes]
    return "\n".join(lines)


@contextlib.contextmanager
def no_distribution() -> Iterator[None]:
    """Run a block without the global JAX distribution (e.g. single-device inference)."""
    import keras

    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)


def with_overrides(plan: Plan, **changes: Any) -> Plan:
    """A copy of ``plan`` with some decisions changed (``bench`` compares variants)."""
    return replace(plan, **changes)


def xla_failure(model: Any, sample_inputs: Any) -> str | None:
    """On TensorFlow, XLA-compile the forward pass once; describe the first failing layer.

    Returns None when it compiles. Called before ``fit`` so that a model with an op
    XLA cannot compile falls back to plain TensorFlow with a warning instead of
    failing after the data has loaded.
    """
    import tensorflow as tf

    try:
        tf.function(lambda x: model(x, training=False), jit_compile=True)(sample_inputs)
        return None
    except Exception as err:  # XLA raises several unrelated types
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
    import keras

    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        try:
            upstream = keras.Model(model.inputs, layer.input)(sample_inputs, training=False)
            tf.function(lambda x, layer=layer: layer(x, training=False),
                        jit_compile=True)(upstream)
        except Exception as err:  # the first layer that XLA cannot compile
            detail = str(err).strip().splitlines()[0][:200] if str(err).strip() else reason
            return f"layer '{layer.name}' ({type(layer).__name__}): {detail}"
    return f"model '{getattr(model, 'name', 'model')}': {reason}"


def describe_non_xla_layers(model: Any) -> str:
    """Name the layers that keep Keras from XLA-compiling ``model``."""
    names = [f"'{layer.name}' ({type(layer).__name__})" for layer in model._flatten_layers()
             if not getattr(layer, "supports_jit", True)]
    if not names:
        return "Keras disabled jit_compile for this model"
    return "layer(s) " + ", ".join(names) + " cannot be compiled by XLA"
