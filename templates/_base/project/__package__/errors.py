"""Errors a user can act on. The CLI prints them as one line and exits with code 2."""


class ProjectError(Exception):
    """Base class: the message is shown to the user as it is."""


class ConfigError(ProjectError):
    """A key, type or value in config.toml or --set is wrong."""


class DataError(ProjectError):
    """The data is missing, malformed or unusable; the message names the file."""


class RunDirError(ProjectError):
    """The run directory cannot be used (unwritable, full disk, already used)."""
