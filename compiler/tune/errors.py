"""The tuner's error class, in the package's one hierarchy."""

from __future__ import annotations

from vta.errors import VTAError

__all__ = ["TuneError"]


class TuneError(VTAError, ValueError):
    """A tuning task, knob, space or log that cannot be used; the message says which and why."""
