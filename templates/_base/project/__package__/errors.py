"""Errors a user can act on. The CLI prints them as one line and exits with code 2."""


class ProjectError(Exception):
    """Base class: the message is shown to the user as it is."""

    exit_code = 2


class ConfigError(ProjectError):
    """A key, type or value in config.toml or --set is wrong."""


class DataError(ProjectError):
    """The data is missing, malformed or unusable; the message names the file."""


class RunDirError(ProjectError):
    """The run directory cannot be used (unwritable, full disk, already used)."""


class TrainingStopped(ProjectError):
    """Training stopped early on purpose (a signal) or by necessity (NaN loss)."""


class TrainingInterrupted(TrainingStopped):
    """SIGTERM: a checkpoint was saved; ``--resume`` continues."""

    exit_code = 143  # 128 + SIGTERM, what schedulers expect from a preempted job
