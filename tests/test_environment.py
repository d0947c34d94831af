"""vta.environment holds what a configuration is; vta.config, where it comes from, re-exports it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import vta.config
import vta.environment

CORE = Path(__file__).resolve().parents[1] / "core"


def test_config_re_exports_the_environment_names_as_the_same_objects():
    for name in vta.environment.__all__:
        if name != "innermost":
            assert getattr(vta.config, name) is getattr(vta.environment, name), name
            assert name in vta.config.__all__


def test_environment_reads_no_variables_or_files():
    """Building an Environment works where the VTA_* variables would make vta.config refuse."""
    code = ("from vta.environment import Environment; "
            "print(Environment.from_dict(dict(TARGET='sim', HW_VER='0.0.2', LOG_INP_WIDTH=3, LOG_WGT_WIDTH=3, "
            "LOG_ACC_WIDTH=5, LOG_BATCH=0, LOG_BLOCK=4, LOG_UOP_BUFF_SIZE=15, LOG_INP_BUFF_SIZE=15, "
            "LOG_WGT_BUFF_SIZE=18, LOG_ACC_BUFF_SIZE=17)).BITSTREAM); "
            "import vta.config; vta.config.get_env()")
    env = {**os.environ, "VTA_TARGET": "nonsense", "VTA_CONFIG": "/nonexistent/vta_config.json"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.stdout == "1x16_i8w8a32_15_15_18_17\n"
    assert "vta.errors.ConfigError: VTA_TARGET='nonsense' is not allowed" in r.stderr


def test_innermost_follows_the_with_blocks():
    outer = vta.config.load_config(target="pynq")
    inner = outer.replace(TARGET="sim")
    assert vta.environment.innermost() is None
    with outer:
        with inner:
            assert vta.environment.innermost() is inner is vta.config.get_env()
        assert vta.environment.innermost() is outer
    assert vta.environment.innermost() is None


def test_configuration_modules_stay_within_the_module_size_guideline():
    for name in ("config.py", "environment.py"):
        assert len((CORE / name).read_text().splitlines()) <= 400, name
