import re

import pytest

from tests.bitstream.synth import make_bit
from vta.bitstream.manifest import RELEASES, by_sha256, expected_for, extension_for, lookup
from vta.errors import BitstreamError


def test_pynq_release_facts(pynq_env):
    r = expected_for(pynq_env)
    assert r.key == "pynq/0.0.2/1x16_i8w8a32_15_15_18_17.bit"
    assert r.size == 4045671
    assert r.sha256 == "0b24cdf9001d349512ab5fb34a0639056c87c8438dc3bce45be892ae43faf568"
    assert (r.design, r.tool_version, r.part) == ("vta_wrapper", "2018.3", "7z020clg484")
    assert (r.date, r.time, r.data_length) == ("2020/06/30", "18:11:16", 4045564)


def test_every_row_of_the_inventory():
    assert sorted(r.key for r in RELEASES) == sorted([
        "pynq/0.0.2/1x16_i8w8a32_15_15_18_17.bit",
        "pynq/0.0.1/1x16_i8w8a32_15_15_18_17.bit",
        "pynq/0.0.1/4x8_i8w8a32_15_16_16_18.bit",
        "pynq/0.0.0/1x16x16_a8w8o8s32_15_15_18_17.bit",
        "pynq/0.0.0/1x16x16_8bx8b_15_15_18_17_100MHz_7ns_v0_0_0.bit",
        "pynq/0.0.0/1x16x16_8bx8b_15_15_18_17_100MHz_8ns_v0_0_0.bit",
        "de10nano/0.0.1/1x16_i8w8a32_15_15_18_17.rbf",
    ])
    assert len({r.sha256 for r in RELEASES}) == len(RELEASES)
    assert all(re.fullmatch(r"[0-9a-f]{64}", r.sha256) for r in RELEASES)


@pytest.mark.parametrize("record", [r for r in RELEASES if r.ext == ".bit"], ids=lambda r: r.key)
def test_bit_records_add_up_to_their_size(record):
    """Header fields + data length must give the file size, as the header of the real file does."""
    header = make_bit(b"", design=f"{record.design};UserID=0XFFFFFFFF;Version={record.tool_version}",
                      part=record.part, date=record.date, time=record.time)
    assert len(header) + record.data_length == record.size


def test_rbf_record_has_no_header():
    (rbf,) = [r for r in RELEASES if r.ext == ".rbf"]
    assert (rbf.target, rbf.size, rbf.design, rbf.part, rbf.data_length) == ("de10nano", 3803804, None, None, None)


def test_lookup_and_by_sha256():
    assert lookup("pynq", "0.0.1", "4x8_i8w8a32_15_16_16_18").size == 4045671
    assert lookup("pynq", "0.0.2", "4x8_i8w8a32_15_16_16_18") is None
    sha = "C8808D2F4877A7AB4301B58B9926EB5070495FEAF3FDE401CEC4E0228F2DB7F3"
    assert by_sha256(sha).key == "pynq/0.0.1/1x16_i8w8a32_15_15_18_17.bit"
    assert by_sha256("0" * 64) is None


def test_expected_for_other_released_configs(pynq_env):
    batched = pynq_env.replace(HW_VER="0.0.1", LOG_BATCH=2, LOG_BLOCK=3, LOG_INP_BUFF_SIZE=16,
                               LOG_WGT_BUFF_SIZE=16, LOG_ACC_BUFF_SIZE=18)
    assert expected_for(batched).key == "pynq/0.0.1/4x8_i8w8a32_15_16_16_18.bit"
    assert expected_for(pynq_env.replace(HW_VER="0.0.1")).date == "2019/07/25"
    assert expected_for(pynq_env.replace(TARGET="de10nano", HW_VER="0.0.1")).ext == ".rbf"


def test_expected_for_unreleased_config(user_env):
    with pytest.raises(BitstreamError, match=r"^no released bitstream for TARGET=pynq HW_VER=0\.0\.2: "
                       r"pynq/0\.0\.2/2x16_i8w8a32_15_15_18_17\.bit is not in the distribution; build your own "
                       r"\(released for pynq: pynq/0\.0\.2/1x16_i8w8a32_15_15_18_17\.bit, .*\)$"):
        expected_for(user_env)


def test_expected_for_target_without_release(pynq_env):
    with pytest.raises(BitstreamError, match=r"build your own \(released for ultra96: none\)$"):
        expected_for(pynq_env.replace(TARGET="ultra96"))


@pytest.mark.parametrize("target", ["sim", "tsim", "intelfocl"])
def test_targets_without_fpga_file(pynq_env, target):
    with pytest.raises(BitstreamError, match=rf"^TARGET='{target}' has no FPGA bitstream; bitstreams exist for "
                       r"TARGET in pynq, ultra96, zcu104, de10nano \(set VTA_TARGET=pynq"):
        expected_for(pynq_env.replace(TARGET=target))
    assert extension_for("de10nano") == ".rbf" and extension_for("ultra96") == ".bit"
