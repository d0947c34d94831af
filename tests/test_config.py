import json

import pytest

from vta.config import Environment, get_env, load_config
from vta.errors import ConfigError

PYNQ = {
    "TARGET": "pynq", "HW_VER": "0.0.2", "LOG_INP_WIDTH": 3, "LOG_WGT_WIDTH": 3, "LOG_ACC_WIDTH": 5,
    "LOG_BATCH": 0, "LOG_BLOCK": 4, "LOG_UOP_BUFF_SIZE": 15, "LOG_INP_BUFF_SIZE": 15,
    "LOG_WGT_BUFF_SIZE": 18, "LOG_ACC_BUFF_SIZE": 17,
}


def test_pynq_default_derived_constants():
    env = Environment.from_dict(PYNQ)
    assert env.BITSTREAM == "1x16_i8w8a32_15_15_18_17"
    assert env.MODEL == "pynq_1x16_i8w8a32_15_15_18_17"
    assert (env.INP_ELEM_BYTES, env.WGT_ELEM_BYTES, env.ACC_ELEM_BYTES, env.OUT_ELEM_BYTES) == (16, 256, 64, 16)
    assert (env.UOP_BUFF_DEPTH, env.INP_BUFF_DEPTH, env.WGT_BUFF_DEPTH, env.ACC_BUFF_DEPTH) == (8192, 2048, 1024, 2048)
    assert env.LOG_OUT_BUFF_SIZE == 15 and env.OUT_BUFF_SIZE == 32768
    assert (env.MEMOP_ID_BITS, env.ALU_OPCODE_BITS, env.UOP_SRC_BITS) == (3, 3, 11)
    assert env.FPGA_FREQ_MHZ == 100 and env.IP_BASES[0] == 0x43C00000


def test_hw_ver_001_widths():
    env = Environment.from_dict({**PYNQ, "HW_VER": "0.0.1"})
    assert (env.MEMOP_ID_BITS, env.ALU_OPCODE_BITS) == (2, 2)


def test_batched_bitstream_name():
    env = Environment.from_dict({**PYNQ, "LOG_BATCH": 2, "LOG_BLOCK": 3, "LOG_INP_BUFF_SIZE": 16,
                                 "LOG_WGT_BUFF_SIZE": 16, "LOG_ACC_BUFF_SIZE": 18, "HW_VER": "0.0.1"})
    assert env.BITSTREAM == "4x8_i8w8a32_15_16_16_18"


def test_bundled_config_is_the_reference_default():
    env = load_config()
    assert env.TARGET == "sim" and env.BITSTREAM == "1x16_i8w8a32_15_15_18_17"
    assert load_config(target="pynq").TARGET == "pynq"


@pytest.mark.parametrize("key,value,allowed", [
    ("TARGET", "fpga", "sim, pynq"),
    ("HW_VER", "0.0.3", "0.0.1, 0.0.2"),
    ("LOG_INP_WIDTH", 4, "3"),
    ("LOG_BLOCK", 9, "1..6"),
    ("LOG_UOP_BUFF_SIZE", "15", "5..19"),
])
def test_invalid_value_names_key_and_allowed_values(key, value, allowed):
    with pytest.raises(ConfigError, match=rf"^{key}={value!r} is not allowed; allowed values: .*{allowed}"):
        Environment.from_dict({**PYNQ, key: value})


def test_missing_and_unknown_keys():
    cfg = dict(PYNQ)
    del cfg["LOG_BLOCK"]
    with pytest.raises(ConfigError, match=r"missing key\(s\) LOG_BLOCK"):
        Environment.from_dict(cfg)
    with pytest.raises(ConfigError, match=r"unknown key\(s\) HW_FREQ"):
        Environment.from_dict({**PYNQ, "HW_FREQ": 100})


def test_uop_too_wide_is_rejected():
    with pytest.raises(ConfigError, match=r"-bit micro-op; allowed: at most 32 bits"):
        Environment.from_dict({**PYNQ, "LOG_ACC_BUFF_SIZE": 22, "LOG_WGT_BUFF_SIZE": 22})


def test_load_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot read config file"):
        load_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match=r"is not valid JSON"):
        load_config(bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(PYNQ))
    assert load_config(good).TARGET == "pynq"


def test_context_manager_swaps_active_env():
    other = Environment.from_dict({**PYNQ, "TARGET": "pynq"})
    before = get_env()
    with other:
        assert get_env() is other
    assert get_env() is before
