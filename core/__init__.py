"""pynq-vta: compiler, runtime, simulator and board driver for the VTA accelerator.

Importing ``vta`` is cheap: no device is probed and no config file is read until
:func:`get_env` is first called.
"""

from vta.config import Environment, get_env, load_config
from vta.errors import VTAError

__all__ = ["Environment", "VTAError", "get_env", "load_config"]
__version__ = "0.1.0"
