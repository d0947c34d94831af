"""Loading vector directories: every malformed directory gets one VectorError naming the file and the rule."""

import json
import os
import re

import numpy as np
import pytest

from vta.isa import FinishInsn
from vta.sim.vector import MAX_JSON_BYTES, VectorError, load_vector, run_vector

GiB = 1 << 30


def make(tmp_path, meta=None, size=4096):
    """A one-instruction (FINISH) vector directory; ``meta`` overrides keys of meta.json."""
    d = tmp_path / "vec"
    d.mkdir()
    image = np.zeros(size, np.uint8)
    image[:16] = np.frombuffer(FinishInsn().encode(), np.uint8)
    (d / "mem_in.bin").write_bytes(image.tobytes())
    (d / "meta.json").write_text(json.dumps({"phys_base": 4096, "insn_offset": 0, "insn_count": 1, **(meta or {})}))
    return d


def test_a_well_formed_vector_loads_and_runs(tmp_path):
    v = load_vector(make(tmp_path))
    assert (v.phys_base, v.insn_count, len(v.mem_in), v.mem_out) == (4096, 1, 4096, None)
    assert v.mem_in.flags.writeable
    assert run_vector(v).error is None


@pytest.mark.parametrize("meta,msg", [
    ({"insn_offset": 8}, r"/meta\.json: insn_offset 8 must be a multiple of 16 \(instructions are 16-byte aligned\)$"),
    ({"insn_count": True}, r"/meta\.json: insn_count must be a non-negative integer, got True$"),
    ({"phys_base": False}, r"/meta\.json: phys_base must be a non-negative integer, got False$"),
    ({"insn_offset": 1.0}, r"/meta\.json: insn_offset must be a non-negative integer, got 1\.0$"),
    ({"phys_base": 4097}, r"/meta\.json: phys_base 0x1001 must be page-aligned \(4096 bytes\) and nonzero$"),
    ({"insn_count": 300}, r": the instruction stream \(offset 0, 300 instructions\) runs past the 4096-byte image$"),
])
def test_bad_meta_values_are_refused(tmp_path, meta, msg):
    d = make(tmp_path, meta)
    with pytest.raises(VectorError, match="^" + re.escape(str(d)) + msg):
        load_vector(d)


def test_a_5_gib_image_is_refused_from_its_size_without_being_read(tmp_path):
    d = make(tmp_path)
    os.truncate(d / "mem_in.bin", 5 * GiB)  # sparse: nothing is written, and reading it would take 5 GiB
    with pytest.raises(VectorError, match=rf"^{d}/mem_in\.bin: 5368709120 bytes; an image in the 32-bit address "
                                          r"space is at most 4294963200 bytes \(4 GiB less the first page\)$"):
        load_vector(d)


def test_an_image_that_fits_only_at_a_lower_phys_base_names_both(tmp_path):
    d = make(tmp_path, {"phys_base": 2 * GiB})
    os.truncate(d / "mem_in.bin", 3 * GiB)
    with pytest.raises(VectorError, match=rf"^{d}: mem_in\.bin \(3221225472 bytes\) placed at phys_base 0x80000000 "
                                          r"would end past 4 GiB; at this phys_base an image is at most 2147483648 "
                                          r"bytes$"):
        load_vector(d)


def test_meta_json_that_is_not_an_object_or_not_utf8(tmp_path):
    d = make(tmp_path)
    (d / "meta.json").write_text("[1, 2]")
    with pytest.raises(VectorError, match=rf"^{d}/meta\.json: expected a JSON object, got a JSON array$"):
        load_vector(d)
    (d / "meta.json").write_bytes(b'{"phys_base": "\xff\xfe"}')
    with pytest.raises(VectorError, match=rf"^{d}/meta\.json: not UTF-8 text \(byte 15\)$"):
        load_vector(d)
    (d / "meta.json").write_text("{")
    with pytest.raises(VectorError, match=rf"^{d}/meta\.json: not valid JSON: "):
        load_vector(d)
    (d / "meta.json").write_text(" " * (MAX_JSON_BYTES + 1))
    with pytest.raises(VectorError, match=rf"^{d}/meta\.json: 1048577 bytes; a vector's JSON files are at most "
                                          r"1048576 bytes$"):
        load_vector(d)


def test_files_that_are_directories_or_missing(tmp_path):
    d = make(tmp_path)
    (d / "mem_in.bin").unlink()
    with pytest.raises(VectorError, match=rf"^{d}: a vector directory needs meta\.json and mem_in\.bin$"):
        load_vector(d)
    (d / "mem_in.bin").mkdir()
    with pytest.raises(VectorError, match=rf"^{d}/mem_in\.bin: not a regular file$"):
        load_vector(d)
    (d / "mem_in.bin").rmdir()
    (d / "mem_in.bin").write_bytes(bytes(4096))
    (d / "stats.json").mkdir()
    with pytest.raises(VectorError, match=rf"^{d}/stats\.json: not a regular file$"):
        load_vector(d)
    with pytest.raises(VectorError, match=rf"^{d / 'nowhere'}: not a vector directory$"):
        load_vector(d / "nowhere")


def test_mem_out_must_have_the_image_size(tmp_path):
    d = make(tmp_path)
    (d / "mem_out.bin").write_bytes(bytes(100))
    with pytest.raises(VectorError, match=rf"^{d}/mem_out\.bin: 100 bytes; the image after the run has the size of "
                                          r"mem_in\.bin, 4096 bytes$"):
        load_vector(d)
