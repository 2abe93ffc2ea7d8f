/*
 * runner32.c - execute small IA-32 code snippets natively on the host CPU.
 *
 * Built by tests/common/native.rs with `gcc -m32 -static -no-pie` and driven
 * by tests/native_diff.rs: the host CPU is the reference the emulator is
 * compared against.
 *
 * Protocol (all integers little-endian u32):
 *   request  := case* [u32 0]            (EOF also ends the stream)
 *   case     := u32 code_len (1..MAX_CODE), u8 code[code_len],
 *               u32 regs[8]  (EAX ECX EDX EBX ESP EBP ESI EDI; ESP ignored),
 *               u32 eflags   (only CF PF AF ZF SF OF DF are honoured),
 *               u8  data[DATA_LEN]
 *   response := result per case, in order
 *   result   := u32 outcome (0 ok, 1 SIGFPE/#DE, 2 SIGSEGV, 3 SIGILL,
 *                            4 SIGBUS, 5 SIGTRAP, 6 SIGFPE from #XM),
 *               u32 regs[8], u32 eip, u32 eflags, u8 data[DATA_LEN]
 *               [u8 fxsave[512]]   (only when started with `--fx`)
 *
 * For outcome 0 the registers are those after the snippet and `eip` is
 * CODE_ADDR + code_len (where the runner's RET sits). For a fault they come
 * from the signal context: the state at the faulting instruction, with `eip`
 * pointing at it (#DE is a fault).
 *
 * The snippet is copied to CODE_ADDR followed by a RET (0xC3) and entered
 * with a CALL from a trampoline that loads every general register except ESP
 * plus EFLAGS (POPFD). The data buffer lives at DATA_ADDR; the whole data page
 * is zeroed before each case. Snippets must not use the stack.
 *
 * With `--fx` each result is followed by the 512-byte FXSAVE image of the
 * x87/MMX/SSE state: taken by the trampoline right after the snippet returns,
 * or for a fault the image the kernel saved in the signal frame (the state at
 * the faulting instruction, MXCSR flags included). A fault whose frame has no
 * FXSAVE image gives 512 zero bytes. SIGFPE is reported as outcome 6 when the
 * kernel says it came from a SIMD floating-point exception (trap 19).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#if !defined(__i386__)
#error "runner32.c must be compiled with gcc -m32"
#endif

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define CODE_ADDR 0x00400000u
#define DATA_ADDR 0x00500000u
#define PAGE 0x1000u
#define MAX_CODE (PAGE - 16u)
#define DATA_LEN 256u
#define EFLAGS_IN_MASK 0x0CD5u /* CF PF AF ZF SF DF OF */

enum { OUT_OK = 0, OUT_FPE = 1, OUT_SEGV = 2, OUT_ILL = 3, OUT_BUS = 4, OUT_TRAP = 5,
       OUT_XM = 6 };

/* x86 trap number of a SIMD floating-point exception. */
#define TRAP_XM 19
/* Offset of the FXSAVE image in the i386 signal frame's FPU state (after the
 * 112-byte FNSAVE-format header whose last u16, `magic`, is 0 when present). */
#define FRAME_FX_OFF 112
#define FRAME_MAGIC_OFF 110

/* Trampoline state; absolute addresses (the runner is linked non-PIE). */
uint32_t t_in[8];
uint32_t t_in_eflags;
uint32_t t_out[8];
uint32_t t_out_eflags;
uint32_t t_entry = CODE_ADDR;
uint32_t t_host_esp;
/* FXSAVE image right after the snippet returns. */
uint8_t t_fx[512] __attribute__((aligned(16)));

void run_snippet(void);

__asm__(".text\n"
        ".globl run_snippet\n"
        "run_snippet:\n"
        "  pushl %ebp\n"
        "  pushl %ebx\n"
        "  pushl %esi\n"
        "  pushl %edi\n"
        "  movl %esp, t_host_esp\n"
        "  pushl t_in_eflags\n"
        "  popfl\n"
        "  movl t_in+0, %eax\n"
        "  movl t_in+4, %ecx\n"
        "  movl t_in+8, %edx\n"
        "  movl t_in+12, %ebx\n"
        "  movl t_in+20, %ebp\n"
        "  movl t_in+24, %esi\n"
        "  movl t_in+28, %edi\n"
        "  call *t_entry\n"
        "  movl %esp, t_out+16\n"
        "  pushfl\n"
        "  movl %eax, t_out+0\n"
        "  movl %ecx, t_out+4\n"
        "  movl %edx, t_out+8\n"
        "  movl %ebx, t_out+12\n"
        "  movl %ebp, t_out+20\n"
        "  movl %esi, t_out+24\n"
        "  movl %edi, t_out+28\n"
        "  popl t_out_eflags\n"
        "  fxsave t_fx\n"
        "  cld\n"
        "  movl t_host_esp, %esp\n"
        "  popl %edi\n"
        "  popl %esi\n"
        "  popl %ebx\n"
        "  popl %ebp\n"
        "  ret\n");

static sigjmp_buf fault_jmp;
static volatile sig_atomic_t fault_sig;
static uint32_t fault_regs[8];
static uint32_t fault_eip;
static uint32_t fault_eflags;
static uint32_t fault_trapno;
static uint8_t fault_fx[512];
static int fault_has_fx;

static void on_fault(int sig, siginfo_t *si, void *ctx)
{
    ucontext_t *uc = (ucontext_t *)ctx;
    greg_t *g = uc->uc_mcontext.gregs;
    (void)si;
    fault_regs[0] = (uint32_t)g[REG_EAX];
    fault_regs[1] = (uint32_t)g[REG_ECX];
    fault_regs[2] = (uint32_t)g[REG_EDX];
    fault_regs[3] = (uint32_t)g[REG_EBX];
    fault_regs[4] = (uint32_t)g[REG_ESP];
    fault_regs[5] = (uint32_t)g[REG_EBP];
    fault_regs[6] = (uint32_t)g[REG_ESI];
    fault_regs[7] = (uint32_t)g[REG_EDI];
    fault_eip = (uint32_t)g[REG_EIP];
    fault_eflags = (uint32_t)g[REG_EFL];
    fault_trapno = (uint32_t)g[REG_TRAPNO];
    fault_has_fx = 0;
    if (uc->uc_mcontext.fpregs) {
        const uint8_t *fp = (const uint8_t *)uc->uc_mcontext.fpregs;
        uint16_t magic;
        memcpy(&magic, fp + FRAME_MAGIC_OFF, 2);
        if (magic == 0) {
            memcpy(fault_fx, fp + FRAME_FX_OFF, sizeof fault_fx);
            fault_has_fx = 1;
        }
    }
    fault_sig = sig;
    siglongjmp(fault_jmp, 1);
}

static void die(const char *what)
{
    fprintf(stderr, "runner32: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void *map_fixed(uint32_t addr, int prot)
{
    void *p = mmap((void *)(uintptr_t)addr, PAGE, prot,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED)
        die("mmap");
    if ((uintptr_t)p != addr) {
        fprintf(stderr, "runner32: could not map 0x%08x (got %p)\n", addr, p);
        exit(2);
    }
    return p;
}

static int read_exact(void *buf, size_t n)
{
    size_t got = fread(buf, 1, n, stdin);
    if (got == n)
        return 1;
    if (got == 0 && feof(stdin))
        return 0;
    fprintf(stderr, "runner32: truncated input\n");
    exit(2);
}

static void write_exact(const void *buf, size_t n)
{
    if (fwrite(buf, 1, n, stdout) != n)
        die("write");
}

int main(int argc, char **argv)
{
    int fx_mode = argc > 1 && strcmp(argv[1], "--fx") == 0;
    static uint8_t altstack[64 * 1024];
    stack_t ss;
    struct sigaction sa;
    uint8_t *code = map_fixed(CODE_ADDR, PROT_READ | PROT_WRITE | PROT_EXEC);
    uint8_t *data = map_fixed(DATA_ADDR, PROT_READ | PROT_WRITE);
    static uint8_t iobuf_in[1 << 16], iobuf_out[1 << 16];

    setvbuf(stdin, (char *)iobuf_in, _IOFBF, sizeof iobuf_in);
    setvbuf(stdout, (char *)iobuf_out, _IOFBF, sizeof iobuf_out);

    /* A runaway snippet must not hang the test forever. */
    alarm(600);

    memset(&ss, 0, sizeof ss);
    ss.ss_sp = altstack;
    ss.ss_size = sizeof altstack;
    if (sigaltstack(&ss, NULL) != 0)
        die("sigaltstack");
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGFPE, &sa, NULL) || sigaction(SIGSEGV, &sa, NULL) ||
        sigaction(SIGILL, &sa, NULL) || sigaction(SIGBUS, &sa, NULL) ||
        sigaction(SIGTRAP, &sa, NULL))
        die("sigaction");

    for (;;) {
        uint32_t len, regs[8], eflags, outcome, eip;
        uint32_t res_regs[8], res_eflags;

        if (!read_exact(&len, 4) || len == 0)
            break;
        if (len > MAX_CODE) {
            fprintf(stderr, "runner32: code too long (%u)\n", len);
            return 2;
        }
        memset(code, 0xCC, PAGE);
        read_exact(code, len);
        code[len] = 0xC3; /* RET back to the trampoline */
        read_exact(regs, sizeof regs);
        read_exact(&eflags, 4);
        memset(data, 0, PAGE);
        read_exact(data, DATA_LEN);

        memcpy(t_in, regs, sizeof regs);
        t_in_eflags = (eflags & EFLAGS_IN_MASK) | 0x2u;
        fault_sig = 0;
        if (sigsetjmp(fault_jmp, 1) == 0) {
            run_snippet();
            outcome = OUT_OK;
            memcpy(res_regs, t_out, sizeof res_regs);
            res_eflags = t_out_eflags;
            eip = CODE_ADDR + len;
        } else {
            switch (fault_sig) {
            case SIGFPE: outcome = fault_trapno == TRAP_XM ? OUT_XM : OUT_FPE; break;
            case SIGSEGV: outcome = OUT_SEGV; break;
            case SIGILL: outcome = OUT_ILL; break;
            case SIGBUS: outcome = OUT_BUS; break;
            default: outcome = OUT_TRAP; break;
            }
            memcpy(res_regs, fault_regs, sizeof res_regs);
            res_eflags = fault_eflags;
            eip = fault_eip;
        }
        write_exact(&outcome, 4);
        write_exact(res_regs, sizeof res_regs);
        write_exact(&eip, 4);
        write_exact(&res_eflags, 4);
        write_exact(data, DATA_LEN);
        if (fx_mode) {
            static const uint8_t zero_fx[512];
            const uint8_t *fx = t_fx;
            if (outcome != OUT_OK)
                fx = fault_has_fx ? fault_fx : zero_fx;
            write_exact(fx, 512);
        }
    }
    if (fflush(stdout) != 0)
        die("flush");
    return 0;
}
