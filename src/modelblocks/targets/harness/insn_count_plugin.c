/* QEMU TCG plugin: exact count of executed guest instructions, with a snapshot of the running
 * count each time the guest enters one marker function.
 *
 * Debian's qemu-system-arm 7.2 supports -plugin but ships no plugin and no qemu-plugin.h, so the
 * few declarations of plugin API version 1 that are used here are written out below (they are the
 * stable C ABI of QEMU 4.2 to 8.x). Built by ModelBlocks with the host's gcc:
 *     gcc -O2 -shared -fPIC -fvisibility=hidden -o libmb_insn_count.so insn_count_plugin.c
 * Used as
 *     qemu-system-arm ... -plugin libmb_insn_count.so,mark=0x1234,out=counts.txt
 * `mark` is the marker function's address (Thumb bit ignored); `out` receives one line with the
 * total, then one line per marker entry with the count of instructions executed before it. */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    bool system_emulation;
    union {
        struct {
            int smp_vcpus;
            int max_vcpus;
        } system;
    };
} qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
extern struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
extern uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
extern void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_op op,
                                                       void *ptr, uint64_t imm);
extern void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                                   enum qemu_plugin_cb_flags flags, void *userdata);
extern void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t executed;     /* single vCPU: a plain counter is exact */
static uint64_t mark_address; /* Thumb bit cleared */
static uint64_t *snapshots;
static size_t n_snapshots, cap_snapshots;
static char out_path[4096];

static void on_mark(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    if (n_snapshots == cap_snapshots) {
        size_t cap = cap_snapshots ? 2 * cap_snapshots : 4096;
        uint64_t *grown = realloc(snapshots, cap * sizeof *grown);
        if (!grown) {
            fprintf(stderr, "insn_count plugin: out of memory\n");
            exit(70);
        }
        snapshots = grown;
        cap_snapshots = cap;
    }
    snapshots[n_snapshots++] = executed;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; ++i) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        /* The callback is registered first so that a snapshot never includes the marker's own first
         * instruction; per-instruction adds (not one add per block) stay exact when a block is left
         * early (faults, semihosting traps). */
        if ((qemu_plugin_insn_vaddr(insn) & ~(uint64_t)1) == mark_address) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &executed, 1);
    }
}

static void on_qemu_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    FILE *f = out_path[0] ? fopen(out_path, "w") : stderr;
    if (!f) {
        fprintf(stderr, "insn_count plugin: cannot write %s\n", out_path);
        return;
    }
    fprintf(f, "%" PRIu64 "\n", executed);
    for (size_t i = 0; i < n_snapshots; ++i) {
        fprintf(f, "%" PRIu64 "\n", snapshots[i]);
    }
    if (f != stderr) {
        fclose(f);
    }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                                               int argc, char **argv)
{
    (void)info;
    mark_address = UINT64_MAX;
    for (int i = 0; i < argc; ++i) {
        if (strncmp(argv[i], "mark=", 5) == 0) {
            mark_address = strtoull(argv[i] + 5, NULL, 0) & ~(uint64_t)1;
        } else if (strncmp(argv[i], "out=", 4) == 0) {
            snprintf(out_path, sizeof out_path, "%s", argv[i] + 4);
        } else {
            fprintf(stderr, "insn_count plugin: unknown argument %s (expected mark=ADDR, out=PATH)\n", argv[i]);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_qemu_exit, NULL);
    return 0;
}
