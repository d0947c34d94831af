"""The C declarations of ``vta_driver.c`` that cffi exposes, as one string."""

from __future__ import annotations

__all__ = ["CDEFS", "MODULE_NAME", "REPORT_STRUCT"]

MODULE_NAME = "vta.driver._vta_driver"

# The run report struct, declared once: cffi reads it here and _build.py prepends it to vta_driver.c.
REPORT_STRUCT = """
typedef struct {
    int status;
    uint32_t done;
    uint32_t stale_done;
    int cleared;
    uint32_t ctrl[4];
    uint64_t polls;
    double elapsed_s;
    int bad_module;
    uint32_t bad_offset;
    uint32_t wrote;
    uint32_t read_back;
} vta_run_report;
"""

CDEFS = REPORT_STRUCT + """
typedef struct vta_device vta_device;

int vta_device_open(const char *mem_path, const uint64_t *bases, const char *bell_path, vta_device **out,
                    const char **failed);
void vta_device_close(vta_device *dev);
uint32_t vta_reg_read(vta_device *dev, int module, uint32_t offset);
void vta_reg_write(vta_device *dev, int module, uint32_t offset, uint32_t value);
const char *vta_driver_build(void);
int vta_device_run(vta_device *dev, uint32_t insn_phys, uint32_t insn_count, uint32_t clear_phys, double timeout_s,
                   vta_run_report *rep);
"""
