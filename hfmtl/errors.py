"""Errors the user can fix. The CLI prints their message without a traceback (unless --debug).

Each message names the file, line or config key at fault and what was expected there.
"""

from __future__ import annotations


class HfmtlError(Exception):
    """A problem with the user's input (config, data, model directory) rather than a bug in hfmtl."""


class ConfigError(HfmtlError):
    """The run config is malformed: unknown key, wrong type, impossible value."""


class DataError(HfmtlError):
    """A data file is missing, unreadable, or holds rows that do not fit the task."""


class ModelLoadError(HfmtlError):
    """An encoder or model directory cannot be found or is not what was expected."""


class InputError(HfmtlError, ValueError):
    """Input to predict on is not usable text (empty, whitespace only, not a string)."""


class HubError(HfmtlError):
    """The Hugging Face Hub could not be reached, or refused a request (offline, no network, no access)."""
