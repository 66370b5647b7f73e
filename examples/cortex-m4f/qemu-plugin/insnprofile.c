/* QEMU TCG plugin (API v1, QEMU 7.2): exact count of executed guest instructions, and
   optionally how often each instruction address ran.

   Debian's qemu-system-* 7.2 is built with plugin support but ships neither plugins nor
   qemu-plugin.h, so the few declarations needed are written out here.

   Build: gcc -O2 -shared -fPIC -o libinsnprofile.so insnprofile.c
   Use:   qemu-system-arm ... -icount shift=0 -d plugin -plugin ./libinsnprofile.so[,profile=FILE]
   Prints "insns: N" at exit. With profile=FILE it also writes "address count" lines (hex,
   decimal) for every address that ran inside the first 1 MiB above the code base
   (base=0x... sets it; default 0, the Cortex-M flash), to be mapped to functions with
   addr2line. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t, struct qemu_plugin_tb *);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t, void *);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, qemu_plugin_vcpu_tb_trans_cb_t);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *, size_t);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *, enum qemu_plugin_op,
                                                void *, uint64_t);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, qemu_plugin_udata_cb_t, void *);
void qemu_plugin_outs(const char *);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

#define WINDOW (1u << 20) /* bytes of code profiled above the base */
#define SLOTS (WINDOW / 2) /* instructions are at least 2-byte aligned */

static uint64_t insn_count; /* single vCPU: plain counters suffice */
static uint64_t *slots;
static uint64_t base;
static const char *profile_path;

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
                                                   &insn_count, 1);
        if (slots) {
            uint64_t offset = qemu_plugin_insn_vaddr(insn) - base;
            if (offset < WINDOW)
                qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
                                                           &slots[offset / 2], 1);
        }
    }
}

static void at_exit(qemu_plugin_id_t id, void *p) {
    char line[64];
    snprintf(line, sizeof line, "insns: %" PRIu64 "\n", insn_count);
    qemu_plugin_outs(line);
    if (slots) {
        FILE *out = fopen(profile_path, "w");
        if (!out) {
            qemu_plugin_outs("insnprofile: cannot write the profile file\n");
            return;
        }
        for (uint64_t k = 0; k < SLOTS; k++)
            if (slots[k])
                fprintf(out, "%" PRIx64 " %" PRIu64 "\n", base + 2 * k, slots[k]);
        fclose(out);
    }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const qemu_info_t *info,
                                                               int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "profile=", 8) == 0)
            profile_path = argv[i] + 8;
        else if (strncmp(argv[i], "base=", 5) == 0)
            base = strtoull(argv[i] + 5, NULL, 0);
    }
    if (profile_path) {
        slots = calloc(SLOTS, sizeof *slots);
        if (!slots)
            return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
