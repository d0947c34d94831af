/* VTA Pynq register driver (spec §5.1), built with cffi in API mode.
 *
 * The four HLS IP register windows are mapped from a memory device (/dev/mem on the board,
 * the emulator's sparse file elsewhere) at their physical addresses, so the same code drives
 * both. vta_device_run performs the reference run sequence and polls the compute `done`
 * register against a CLOCK_MONOTONIC deadline instead of an iteration count.
 */
#define _FILE_OFFSET_BITS 64
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define VTA_NUM_MODULES 4
#define VTA_FETCH 0
#define VTA_LOAD 1
#define VTA_COMPUTE 2
#define VTA_STORE 3

#define VTA_CTRL 0x00
#define VTA_FETCH_INSN_COUNT_OFFSET 0x10
#define VTA_FETCH_INSN_ADDR_OFFSET 0x18
#define VTA_LOAD_INP_ADDR_OFFSET 0x10
#define VTA_LOAD_WGT_ADDR_OFFSET 0x18
#define VTA_COMPUTE_DONE_RD_OFFSET 0x18
#define VTA_COMPUTE_UOP_ADDR_OFFSET 0x20
#define VTA_COMPUTE_BIAS_ADDR_OFFSET 0x28
#define VTA_STORE_OUT_ADDR_OFFSET 0x10

#define VTA_START 0x1
#define VTA_AUTORESTART 0x81
#define VTA_DONE 0x1

#define VTA_RUN_OK 0
#define VTA_RUN_TIMEOUT 1
#define VTA_RUN_BAD_DONE 2

typedef struct {
    int status;
    uint32_t done;
    uint32_t ctrl[VTA_NUM_MODULES];
    uint64_t polls;
    double elapsed_s;
    int bad_module;
    uint32_t bad_offset;
    uint32_t wrote;
    uint32_t read_back;
} vta_run_report;

typedef struct vta_device {
    int fd;
    size_t map_len[VTA_NUM_MODULES];
    volatile uint8_t *map[VTA_NUM_MODULES];
    volatile uint32_t *regs[VTA_NUM_MODULES];
} vta_device;

/* One argument register the run sequence writes. */
typedef struct {
    int module;
    uint32_t offset;
} vta_arg_reg;

static const vta_arg_reg ARG_REGS[7] = {
    {VTA_FETCH, VTA_FETCH_INSN_COUNT_OFFSET}, {VTA_FETCH, VTA_FETCH_INSN_ADDR_OFFSET},
    {VTA_LOAD, VTA_LOAD_INP_ADDR_OFFSET},     {VTA_LOAD, VTA_LOAD_WGT_ADDR_OFFSET},
    {VTA_COMPUTE, VTA_COMPUTE_UOP_ADDR_OFFSET}, {VTA_COMPUTE, VTA_COMPUTE_BIAS_ADDR_OFFSET},
    {VTA_STORE, VTA_STORE_OUT_ADDR_OFFSET},
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint32_t rd(vta_device *dev, int module, uint32_t offset) {
    return dev->regs[module][offset >> 2];
}

static void wr(vta_device *dev, int module, uint32_t offset, uint32_t value) {
    dev->regs[module][offset >> 2] = value;
}

void vta_device_close(vta_device *dev) {
    if (dev == NULL) return;
    for (int m = 0; m < VTA_NUM_MODULES; m++) {
        if (dev->map[m] != NULL) munmap((void *)dev->map[m], dev->map_len[m]);
    }
    if (dev->fd >= 0) close(dev->fd);
    free(dev);
}

/* Map each window as the reference VTAMapRegister does: page base, then the offset inside it.
 * Returns 0, or -errno with *failed naming the C call that failed. */
int vta_device_open(const char *mem_path, const uint64_t *bases, uint32_t map_range, vta_device **out,
                    const char **failed) {
    long page = sysconf(_SC_PAGESIZE);
    vta_device *dev = calloc(1, sizeof(vta_device));
    *out = NULL;
    if (dev == NULL) {
        *failed = "calloc";
        return -ENOMEM;
    }
    dev->fd = open(mem_path, O_RDWR | O_SYNC);
    if (dev->fd < 0) {
        int err = errno;
        *failed = "open";
        vta_device_close(dev);
        return -err;
    }
    for (int m = 0; m < VTA_NUM_MODULES; m++) {
        uint64_t base = bases[m] & ~((uint64_t)page - 1);
        size_t offset = (size_t)(bases[m] - base);
        void *p = mmap(NULL, map_range + offset, PROT_READ | PROT_WRITE, MAP_SHARED, dev->fd, (off_t)base);
        if (p == MAP_FAILED) {
            int err = errno;
            *failed = "mmap";
            vta_device_close(dev);
            return -err;
        }
        dev->map[m] = p;
        dev->map_len[m] = map_range + offset;
        dev->regs[m] = (volatile uint32_t *)((volatile uint8_t *)p + offset);
    }
    *out = dev;
    return 0;
}

uint32_t vta_reg_read(vta_device *dev, int module, uint32_t offset) { return rd(dev, module, offset); }

void vta_reg_write(vta_device *dev, int module, uint32_t offset, uint32_t value) { wr(dev, module, offset, value); }

/* Each module's ap_ctrl; after a timeout also the first argument register that does not read
 * back what the run wrote (a write the hardware did not accept). */
static void fill_report(vta_device *dev, vta_run_report *rep, const uint32_t wrote[7]) {
    for (int m = 0; m < VTA_NUM_MODULES; m++) rep->ctrl[m] = rd(dev, m, VTA_CTRL);
    rep->bad_module = -1;
    if (rep->status != VTA_RUN_TIMEOUT) return;
    for (int i = 0; i < 7; i++) {
        uint32_t got = rd(dev, ARG_REGS[i].module, ARG_REGS[i].offset);
        if (got != wrote[i]) {
            rep->bad_module = ARG_REGS[i].module;
            rep->bad_offset = ARG_REGS[i].offset;
            rep->wrote = wrote[i];
            rep->read_back = got;
            return;
        }
    }
}

/* The reference run sequence (spec §5.1 steps 1-5). Completion is `done == 1` read after
 * fetch has accepted its start (ap_start cleared), so a `done` left at 1 by the previous run
 * is never mistaken for this run's: compute clears it before fetch can finish dispatching. */
int vta_device_run(vta_device *dev, uint32_t insn_phys, uint32_t insn_count, double timeout_s,
                   vta_run_report *rep) {
    const uint32_t wrote[7] = {insn_count, insn_phys, 0, 0, 0, 0, 0};
    struct timespec pause = {0, 1000};
    double start = now_s();
    double deadline = start + timeout_s;

    wr(dev, VTA_FETCH, VTA_FETCH_INSN_COUNT_OFFSET, insn_count);
    wr(dev, VTA_FETCH, VTA_FETCH_INSN_ADDR_OFFSET, insn_phys);
    wr(dev, VTA_LOAD, VTA_LOAD_INP_ADDR_OFFSET, 0);
    wr(dev, VTA_LOAD, VTA_LOAD_WGT_ADDR_OFFSET, 0);
    wr(dev, VTA_COMPUTE, VTA_COMPUTE_UOP_ADDR_OFFSET, 0);
    wr(dev, VTA_COMPUTE, VTA_COMPUTE_BIAS_ADDR_OFFSET, 0);
    wr(dev, VTA_STORE, VTA_STORE_OUT_ADDR_OFFSET, 0);
    wr(dev, VTA_FETCH, VTA_CTRL, VTA_START);
    wr(dev, VTA_LOAD, VTA_CTRL, VTA_AUTORESTART);
    wr(dev, VTA_COMPUTE, VTA_CTRL, VTA_AUTORESTART);
    wr(dev, VTA_STORE, VTA_CTRL, VTA_AUTORESTART);
    nanosleep(&pause, NULL);

    rep->polls = 0;
    rep->status = VTA_RUN_TIMEOUT;
    for (;;) {
        uint32_t fetch_ctrl = rd(dev, VTA_FETCH, VTA_CTRL);
        uint32_t done = rd(dev, VTA_COMPUTE, VTA_COMPUTE_DONE_RD_OFFSET);
        rep->polls++;
        rep->done = done;
        if (done > VTA_DONE) {
            rep->status = VTA_RUN_BAD_DONE;
            break;
        }
        if (done == VTA_DONE && !(fetch_ctrl & VTA_START)) {
            rep->status = VTA_RUN_OK;
            break;
        }
        if (now_s() >= deadline) break;
        sched_yield();
    }
    rep->elapsed_s = now_s() - start;
    fill_report(dev, rep, wrote);
    return rep->status;
}
