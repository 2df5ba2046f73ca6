/* Arm semihosting calls (bkpt 0xAB on M-profile) used by the simulation harness: file I/O with
 * the host through QEMU, and exit with a status. Operation numbers and parameter blocks are those
 * of Arm's "Semihosting for AArch32 and AArch64" specification. */
#ifndef SIM_SEMIHOST_H
#define SIM_SEMIHOST_H

#include <stdint.h>

enum {
    SH_SYS_OPEN = 0x01,
    SH_SYS_CLOSE = 0x02,
    SH_SYS_WRITE0 = 0x04,
    SH_SYS_WRITE = 0x05,
    SH_SYS_READ = 0x06,
    SH_SYS_FLEN = 0x0C,
    SH_SYS_EXIT_EXTENDED = 0x20
};
enum { SH_MODE_RB = 1, SH_MODE_WB = 5 }; /* fopen modes "rb" and "wb" */

static inline int32_t sh_call(int32_t op, const void *block)
{
    register int32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = block;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static inline int32_t sh_strlen(const char *s)
{
    int32_t n = 0;
    while (s[n]) {
        ++n;
    }
    return n;
}

static inline int32_t sh_open(const char *path, int32_t mode)
{
    const uint32_t block[3] = {(uint32_t)(uintptr_t)path, (uint32_t)mode, (uint32_t)sh_strlen(path)};
    return sh_call(SH_SYS_OPEN, block);
}

static inline int32_t sh_close(int32_t fd)
{
    const uint32_t block[1] = {(uint32_t)fd};
    return sh_call(SH_SYS_CLOSE, block);
}

/* Both return the number of bytes NOT transferred: 0 on success. */
static inline int32_t sh_read(int32_t fd, void *buf, uint32_t bytes)
{
    const uint32_t block[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)buf, bytes};
    return sh_call(SH_SYS_READ, block);
}

static inline int32_t sh_write(int32_t fd, const void *buf, uint32_t bytes)
{
    const uint32_t block[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)buf, bytes};
    return sh_call(SH_SYS_WRITE, block);
}

static inline int32_t sh_flen(int32_t fd)
{
    const uint32_t block[1] = {(uint32_t)fd};
    return sh_call(SH_SYS_FLEN, block);
}

static inline void sh_puts(const char *text)
{
    sh_call(SH_SYS_WRITE0, text);
}

/* QEMU exits with `status` as its own exit code. */
static inline void sh_exit(int32_t status)
{
    const uint32_t block[2] = {0x20026u /* ADP_Stopped_ApplicationExit */, (uint32_t)status};
    sh_call(SH_SYS_EXIT_EXTENDED, block);
    for (;;) {
    }
}

#endif /* SIM_SEMIHOST_H */
