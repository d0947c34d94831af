/* VTA Pynq register driver (spec §5.1), built with cffi in API mode.
 *
 * The four HLS IP register windows are mapped from a memory device (/dev/mem on the board,
 * the emulator's sparse file elsewhere) at their physical addresses, so the same code drives
 * both. vta_device_run performs the reference run sequence and polls the compute `done`
 * register against a CLOCK_MONOTONIC deadline instead of an iteration count. The register
 * constants (VTA_FETCH, VTA_CTRL, VTA_ARG_REGS, ...) are generated from driver/regmap.py, and the
 * vta_run_report struct comes from driver/_cdefs.py; both are prepended to this file at build time
 * (driver/_build.py), so the offsets and the struct cffi sees are written once.
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

/* Build-time check: the report has one ap_ctrl slot per module of the register map. */
typedef char vta_report_ctrl_matches_modules[sizeof(((vta_run_report *)0)->ctrl) / sizeof(uint32_t) ==
                                             VTA_NUM_MODULES ? 1 : -1];

typedef struct vta_device {
    int fd;
    int bell;
    size_t map_len[VTA_NUM_MODULES];
    volatile uint8_t *map[VTA_NUM_MODULES];
    volatile uint32_t *regs[VTA_NUM_MODULES];
} vta_device;

/* One argument register the run sequence writes. */
typedef struct {
    int module;
    uint32_t offset;
} vta_arg_reg;

static const vta_arg_reg ARG_REGS[VTA_NUM_ARG_REGS] = VTA_ARG_REGS;

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

/* Against the emulator only: tell the serving process that registers changed (a FIFO write),
 * so it wakes at once instead of polling. The board has no doorbell (bell < 0). */
static void ring(vta_device *dev) {
    if (dev->bell >= 0) {
        ssize_t n = write(dev->bell, "r", 1);
        (void)n; /* a full FIFO already holds a wake-up */
    }
}

void vta_device_close(vta_device *dev) {
    if (dev == NULL) return;
    for (int m = 0; m < VTA_NUM_MODULES; m++) {
        if (dev->map[m] != NULL) munmap((void *)dev->map[m], dev->map_len[m]);
    }
    if (dev->fd >= 0) close(dev->fd);
    if (dev->bell >= 0) close(dev->bell);
    free(dev);
}

/* Map each window as the reference VTAMapRegister does: page base, then the offset inside it.
 * `bell_path` is the emulator's doorbell FIFO, or NULL. Returns 0, or -errno with *failed
 * naming the C call that failed. */
int vta_device_open(const char *mem_path, const uint64_t *bases, const char *bell_path, vta_device **out,
                    const char **failed) {
    long page = sysconf(_SC_PAGESIZE);
    vta_device *dev = calloc(1, sizeof(vta_device));
    *out = NULL;
    if (dev == NULL) {
        *failed = "calloc";
        return -ENOMEM;
    }
    dev->bell = -1;
    dev->fd = open(mem_path, O_RDWR | O_SYNC);
    if (dev->fd < 0) {
        int err = errno;
        *failed = "open";
        vta_device_close(dev);
        return -err;
    }
    if (bell_path != NULL) {
        dev->bell = open(bell_path, O_WRONLY | O_NONBLOCK);
        if (dev->bell < 0) {
            int err = errno;
            *failed = "open (doorbell)";
            vta_device_close(dev);
            return -err;
        }
    }
    for (int m = 0; m < VTA_NUM_MODULES; m++) {
        uint64_t base = bases[m] & ~((uint64_t)page - 1);
        size_t offset = (size_t)(bases[m] - base);
        void *p = mmap(NULL, VTA_IP_REG_MAP_RANGE + offset, PROT_READ | PROT_WRITE, MAP_SHARED, dev->fd,
                       (off_t)base);
        if (p == MAP_FAILED) {
            int err = errno;
            *failed = "mmap";
            vta_device_close(dev);
            return -err;
        }
        dev->map[m] = p;
        dev->map_len[m] = VTA_IP_REG_MAP_RANGE + offset;
        dev->regs[m] = (volatile uint32_t *)((volatile uint8_t *)p + offset);
    }
    *out = dev;
    return 0;
}

uint32_t vta_reg_read(vta_device *dev, int module, uint32_t offset) { return rd(dev, module, offset); }

void vta_reg_write(vta_device *dev, int module, uint32_t offset, uint32_t value) {
    wr(dev, module, offset, value);
    ring(dev);
}

/* Each module's ap_ctrl; after a timeout also the first argument register that does not read
 * back what the run wrote (a write the hardware did not accept). */
static void fill_report(vta_device *dev, vta_run_report *rep, const uint32_t wrote[VTA_NUM_ARG_REGS]) {
    for (int m = 0; m < VTA_NUM_MODULES; m++) rep->ctrl[m] = rd(dev, m, VTA_CTRL);
    rep->bad_module = -1;
    if (rep->status != VTA_RUN_TIMEOUT) return;
    for (int i = 0; i < VTA_NUM_ARG_REGS; i++) {
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

/* Spec §5.1 steps 1-4: argument registers, fetch started once, the others with auto-restart. */
static void start_stream(vta_device *dev, const uint32_t wrote[VTA_NUM_ARG_REGS]) {
    struct timespec pause = {0, 1000};
    for (int i = 0; i < VTA_NUM_ARG_REGS; i++) wr(dev, ARG_REGS[i].module, ARG_REGS[i].offset, wrote[i]);
    wr(dev, VTA_FETCH, VTA_CTRL, VTA_START);
    wr(dev, VTA_LOAD, VTA_CTRL, VTA_AUTORESTART);
    wr(dev, VTA_COMPUTE, VTA_CTRL, VTA_AUTORESTART);
    wr(dev, VTA_STORE, VTA_CTRL, VTA_AUTORESTART);
    ring(dev);
    nanosleep(&pause, NULL);
}

/* Poll until `done` reads `want` after fetch has dispatched the whole stream (ap_start clear),
 * a `done` above 1 is read, or the deadline passes. */
static int wait_done(vta_device *dev, uint32_t want, double deadline, vta_run_report *rep) {
    for (;;) {
        uint32_t fetch_ctrl = rd(dev, VTA_FETCH, VTA_CTRL);
        uint32_t done = rd(dev, VTA_COMPUTE, VTA_COMPUTE_DONE_RD_OFFSET);
        rep->polls++;
        rep->done = done;
        if (done > VTA_DONE) return VTA_RUN_BAD_DONE;
        if (done == want && !(fetch_ctrl & VTA_START)) return VTA_RUN_OK;
        if (now_s() >= deadline) return VTA_RUN_TIMEOUT;
        sched_yield();
    }
}

/* The reference run sequence (spec §5.1), made safe against a stale `done`.
 *
 * HLS compute (vta.cc) writes `done = 0` only after the pops of each non-FINISH instruction
 * complete, and FINISH writes `done = 1` (spec §3.7); nothing else touches it. So after a run,
 * `done` stays 1 until the next run's first compute instruction has its tokens, and a stream
 * whose first compute instruction pops a load token (the runtime's usual LOAD UOP pop_prev)
 * would show the old `done == 1` while its loads still run, even after fetch has dispatched
 * everything. Therefore, when `done` is not 0 before the run, the driver first runs
 * `clear_phys`: one compute NOP (LOAD UOP, x_size 0, no dependency flags). It pops nothing,
 * so compute executes it and writes `done = 0`; the driver waits for that 0. From then on
 * `done` can only become 1 through this run's own FINISH, whatever the stream looks like. */
int vta_device_run(vta_device *dev, uint32_t insn_phys, uint32_t insn_count, uint32_t clear_phys, double timeout_s,
                   vta_run_report *rep) {
    const uint32_t wrote[VTA_NUM_ARG_REGS] = VTA_ARG_VALUES(insn_count, insn_phys);
    double start = now_s();
    double deadline = start + timeout_s;

    rep->polls = 0;
    rep->stale_done = rd(dev, VTA_COMPUTE, VTA_COMPUTE_DONE_RD_OFFSET);
    rep->cleared = -1;
    rep->status = VTA_RUN_OK;
    if (rep->stale_done != 0 && clear_phys != 0) {
        const uint32_t clear[VTA_NUM_ARG_REGS] = VTA_ARG_VALUES(1, clear_phys);
        start_stream(dev, clear);
        rep->status = wait_done(dev, 0, deadline, rep);
        rep->cleared = rep->status == VTA_RUN_OK;
        if (rep->status != VTA_RUN_OK) {
            rep->elapsed_s = now_s() - start;
            fill_report(dev, rep, clear);
            return rep->status;
        }
    }
    start_stream(dev, wrote);
    rep->status = wait_done(dev, VTA_DONE, deadline, rep);
    rep->elapsed_s = now_s() - start;
    fill_report(dev, rep, wrote);
    return rep->status;
}
