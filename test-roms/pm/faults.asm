; faults.asm — exception classes and escalation: fault vs trap EIPs (#DE #BR #OF #BP #UD),
; benign + contributory handled serially (error code EXT=1), contributory + contributory and
; page fault + contributory → #DF(0), page fault + page fault → #DF (through a task gate),
; contributory + page fault → #PF, #TS for a bad TSS.SS0 on a ring change, #UD for LOCK
; misuse and undefined opcodes, #NM for the EM/MP/TS combinations (x87 and WAIT), #AC,
; #GP for privileged and IOPL-sensitive instructions at CPL 3, RDMSR/WRMSR, RDTSC with
; CR4.TSD, SYSENTER/SYSEXIT round trip and their #GP conditions, and finally a triple fault
; and a port 0x92 fast reset, each detected after the restart through RAM that survives.
; References: Intel SDM vol. 3 §6.15 (exceptions, table 6-5 double-fault conditions),
; §6.3.1 and 6.13 (error code EXT), §2.5 (CR0.EM/MP/TS, table 2-2), vol. 2 LOCK, SYSENTER,
; SYSEXIT, RDTSC, RDMSR/WRMSR.

%include "lib.inc"

S_TSSDF     equ 0x80        ; #DF handler task
S_TSSPF     equ 0x88        ; #PF handler task
S_TSSTS     equ 0x90        ; #TS handler task
S_CODENP    equ 0x98        ; code DPL0, not present
S_SE_CS     equ 0xA0        ; SYSENTER_CS: ring-0 code, +8 ring-0 data, +16 ring-3 code, +24 ring-3 data
S_CG        equ 0xC0        ; call gate DPL3 → SEL_CODE32:cg_target
S_NP        equ 0xC8        ; data, not present
S_TSSSS     equ 0xD0        ; #SS handler task
S_TINYSS    equ 0xD8        ; 16-byte ring-0 stack segment
S_CG2       equ 0xE0        ; call gate DPL3 with 2 parameters
TSS_DF      equ 0x30000
TSS_PF      equ 0x30100
TSS_TS      equ 0x30200
TSS_SS      equ 0x30300

F_ERR       equ ROMVARS + 0x00
F_BL        equ ROMVARS + 0x04
F_CR2       equ ROMVARS + 0x08
F_VEC       equ ROMVARS + 0x0C
F_RESUME    equ ROMVARS + 0x10
F_ESP       equ ROMVARS + 0x14
SE_CS       equ ROMVARS + 0x20
SE_SS       equ ROMVARS + 0x24
SE_ESP      equ ROMVARS + 0x28
SE_FL       equ ROMVARS + 0x2C
SX_CS       equ ROMVARS + 0x30
SX_SS       equ ROMVARS + 0x34
SX_ESP      equ ROMVARS + 0x38
BOUNDS      equ ROMVARS + 0x40

STAGE       equ PERSIST + 0x10  ; 0: first run, 1: after the triple fault, 2: after the port 0x92 reset
KEEP        equ PERSIST + 0x14  ; RAM value that must survive the resets

%define PTE(lin) (PT_BASE + ((lin) >> 12) * 4)
BADSTK      equ 0x501000        ; ESP0 at the top of a not-present page (0x500000)

main:
    cmp dword [STAGE], 1
    je after_triple
    cmp dword [STAGE], 2
    je after_fast_reset

    GDTDESC S_TSSDF, TSS_DF, 0x67, ACC_TSS32, 0
    GDTDESC S_TSSPF, TSS_PF, 0x67, ACC_TSS32, 0
    GDTDESC S_TSSTS, TSS_TS, 0x67, ACC_TSS32, 0
    GDTDESC S_TSSSS, TSS_SS, 0x67, ACC_TSS32, 0
    GDTDESC S_CODENP, 0, 0xFFFFF, ACC_CODE_XR & ~ACC_P, FL_G | FL_D
    GDTDESC S_SE_CS, 0, 0xFFFFF, ACC_CODE_XR | 1, FL_G | FL_D
    GDTDESC S_SE_CS + 8, 0, 0xFFFFF, ACC_DATA_RW | 1, FL_G | FL_D
    GDTDESC S_SE_CS + 16, 0, 0xFFFFF, ACC_CODE_XR | DPL(3) | 1, FL_G | FL_D
    GDTDESC S_SE_CS + 24, 0, 0xFFFFF, ACC_DATA_RW | DPL(3) | 1, FL_G | FL_D
    SETGATE GDT_BASE, S_CG, SEL_CODE32, cg_target, ACC_CALLGATE32 | DPL(3), 0
    GDTDESC S_NP, 0, 0xFFFFF, ACC_DATA_RW & ~ACC_P, FL_G | FL_D

    ; ================================================================ fault vs trap
    TRY
    xor edx, edx
    xor ecx, ecx
    mov eax, 1
.de: div ecx
    ENDTRY
    EXPECT_FAULT "#DE: fault at the DIV", V_DE, ANYERR, .de
    mov dword [BOUNDS], 10
    mov dword [BOUNDS + 4], 20
    TRY
    mov eax, 21
.br: bound eax, [BOUNDS]
    ENDTRY
    EXPECT_FAULT "#BR: fault at the BOUND", V_BR, ANYERR, .br
    TRY
    mov eax, 15
    bound eax, [BOUNDS]
    ENDTRY
    EXPECT_NO_FAULT "BOUND inside the bounds"
    TRY
    mov al, 0x7F
    add al, 1
    into
.of:
    ENDTRY
    EXPECT_FAULT "#OF: trap after INTO", V_OF, ANYERR, .of
    TRY
    int3
.bp:
    ENDTRY
    EXPECT_FAULT "#BP: trap after INT3", V_BP, ANYERR, .bp
    TRY
.ud: ud2
    ENDTRY
    EXPECT_FAULT "#UD: fault at UD2", V_UD, ANYERR, .ud

    ; ================================================================ escalation table
    ; benign (#UD) then contributory (#NP of the handler's code segment): serial, EXT=1
    IDTGATE V_UD, S_CODENP, lib_stub_6, ACC_INTGATE32
    TRY
.x1: ud2
    ENDTRY
    call lib_restore_idt
    EXPECT_FAULT "#UD whose handler CS is not present: #NP(sel|EXT), no #DF", V_NP, S_CODENP | 1
    ; contributory (#GP) then contributory (#NP): #DF(0)
    IDTGATE V_GP, S_CODENP, lib_stub_13, ACC_INTGATE32
    TRY
    mov ax, 0x400
    mov ds, ax
    ENDTRY
    call lib_restore_idt
    EXPECT_FAULT "#NP while delivering #GP: #DF(0)", V_DF, 0
    ; contributory (#NP) then contributory (#GP: the #NP gate's selector is beyond the GDT)
    IDTGATE V_NP, 0x400, lib_stub_11, ACC_INTGATE32
    TRY
    mov ax, S_NP
    mov ds, ax
    ENDTRY
    call lib_restore_idt
    EXPECT_FAULT "#GP while delivering #NP: #DF(0)", V_DF, 0
    ; contributory then a not-present IDT gate
    IDTGATE V_NP, SEL_CODE32, lib_stub_11, ACC_INTGATE32 & ~ACC_P
    TRY
    mov ax, S_NP
    mov ds, ax
    ENDTRY
    call lib_restore_idt
    EXPECT_FAULT "#NP while delivering #NP (gate not present): #DF(0)", V_DF, 0
    ; page fault then contributory
    call paging_identity
    mov dword [PTE(0x500000)], 0
    call paging_on
    mov dword [TSS0 + 0x1C], PD_BASE                ; task switches back to TSS0 reload CR3
    IDTGATE V_PF, S_CODENP, lib_stub_14, ACC_INTGATE32
    TRY
    mov eax, [0x500000]
    ENDTRY
    call lib_restore_idt
    EXPECT_FAULT "#NP while delivering #PF: #DF(0)", V_DF, 0
    ; page fault then page fault: ring-3 #PF whose ring-0 stack (TSS.ESP0) is not present;
    ; the #DF handler must be a task (its own stack)
    call init_fix_tasks
    IDTGATEN V_DF, S_TSSDF, 0, ACC_TASKGATE
    mov dword [F_RESUME], .pfpf_back
    mov dword [TSS0 + 4], BADSTK
    TO_RING3
    mov eax, [0x500010]
.pfpf_back:
    call fix_restore
    CHECK "#PF while delivering #PF: #DF through the task gate", [F_VEC], V_DF
    CHECK "#PF + #PF: #DF error code 0", [F_ERR], 0
    CHECK "#PF + #PF: back link = interrupted task", [F_BL], SEL_TSS0
    CHECKM "#PF + #PF: CR2 = the ring-0 stack page", [F_CR2], 0xFFFFF000, BADSTK - 0x1000
    ; contributory then page fault: ring-3 #GP whose ring-0 stack is not present → #PF
    call init_fix_tasks
    IDTGATEN V_PF, S_TSSPF, 0, ACC_TASKGATE
    IDTGATEN V_DF, S_TSSDF, 0, ACC_TASKGATE
    mov dword [F_RESUME], .gppf_back
    mov dword [TSS0 + 4], BADSTK
    TO_RING3
    mov ax, SEL_DATA32
    mov ds, ax                      ; #GP(0x10) at CPL3
.gppf_back:
    call fix_restore
    CHECK "#PF while delivering #GP: #PF (no #DF)", [F_VEC], V_PF
    CHECK "#PF during delivery: error code W (supervisor stack write)", [F_ERR], PF_W_ONLY
    CHECKM "#PF during delivery: CR2 in the ring-0 stack page", [F_CR2], 0xFFFFF000, BADSTK - 0x1000
    call paging_off
    mov dword [TSS0 + 0x1C], 0

    ; ================================================================ #TS on a ring change
    call init_fix_tasks
    IDTGATEN V_TS, S_TSSTS, 0, ACC_TASKGATE
    mov dword [F_RESUME], .ts_back
    mov dword [TSS0 + 8], SEL_DATA32_R3             ; SS0 with DPL3
    TO_RING3
.ts_call:
    call S_CG:0
.ts_back:
    call fix_restore
    CHECK "call gate to ring 0 with a DPL3 TSS.SS0: #TS(SS0 sel)", [F_VEC], V_TS
    CHECK "#TS error code = SS0 selector", [F_ERR], SEL_DATA32_R3 & ~3
    CHECK "#TS: fault at the CALL (interrupted EIP)", [F_ESP], .ts_call
    call init_fix_tasks
    IDTGATEN V_TS, S_TSSTS, 0, ACC_TASKGATE
    mov dword [F_RESUME], .ts2_back
    mov dword [TSS0 + 8], 0                         ; null SS0
    IDTGATE 0x40, SEL_CODE32, cg_target, ACC_INTGATE32 | DPL(3)
    TO_RING3
    int 0x40
.ts2_back:
    call fix_restore
    CHECK "INT from ring 3 with a null TSS.SS0: #TS", [F_VEC], V_TS
    CHECKM "#TS error code for a null SS0: selector 0 (EXT masked)", [F_ERR], 0xFFFE, 0

    ; the new stack cannot hold the call-gate frame: #SS(new SS) before the switch
    GDTDESC S_TINYSS, 0x3F000, 0xF, ACC_DATA_RW, FL_D                ; 16 bytes
    SETGATE GDT_BASE, S_CG2, SEL_CODE32, cg_target, ACC_CALLGATE32 | DPL(3), 2
    call init_fix_tasks
    IDTGATEN V_SS, S_TSSSS, 0, ACC_TASKGATE
    mov dword [F_RESUME], .ss_back
    mov dword [TSS0 + 4], 0x10
    mov dword [TSS0 + 8], S_TINYSS
    TO_RING3
    push dword 1
    push dword 2
.ss_call:
    call S_CG2:0
.ss_back:
    call fix_restore
    CHECK "call gate whose new stack is too small: #SS", [F_VEC], V_SS
    CHECK "#SS error code = new SS selector", [F_ERR], S_TINYSS
    CHECK "#SS: fault at the CALL", [F_ESP], .ss_call

    ; ================================================================ #UD
%macro UDTEST 2
    TRY
%%f: %2
    ENDTRY
    EXPECT_FAULT %1, V_UD, ANYERR, %%f
%endmacro
    mov ebx, SCRATCH
    UDTEST "LOCK NOP: #UD", {db 0xF0, 0x90}
    UDTEST "LOCK MOV [mem], reg: #UD", {db 0xF0, 0x89, 0x03}
    UDTEST "LOCK ADD reg, reg: #UD", {db 0xF0, 0x01, 0xD8}
    UDTEST "LOCK CMP [mem], reg (not a RMW instruction): #UD", {db 0xF0, 0x39, 0x03}
    TRY
    lock add [ebx], eax
    lock xchg [ebx], eax
    lock bts dword [ebx], 3
    lock cmpxchg8b [ebx]
    ENDTRY
    EXPECT_NO_FAULT "LOCK on read-modify-write memory forms"
    UDTEST "UD2: #UD", {ud2}
    UDTEST "MOV CS, AX: #UD", {db 0x8E, 0xC8}
    UDTEST "LEA with a register operand: #UD", {db 0x8D, 0xC3}
    UDTEST "LDS with a register operand: #UD", {db 0xC5, 0xC3}
    UDTEST "JMP FAR with a register operand: #UD", {db 0xFF, 0xEB}
    UDTEST "CMPXCHG8B with a register operand: #UD", {db 0x0F, 0xC7, 0xC8}
    UDTEST "MOV to CR1: #UD", {db 0x0F, 0x22, 0xC8}
    UDTEST "0F FF: #UD", {db 0x0F, 0xFF, 0xC0}

    ; ================================================================ #NM (x87 = FNINIT, and WAIT)
%macro NMTEST 4             ; CR0 bits (EM|MP|TS), name, {instruction}, expected (V_NM or NOFAULT)
    mov eax, cr0
    and eax, ~(CR0_EM | CR0_MP | CR0_TS)
    or eax, %1
    mov cr0, eax
    TRY
%%f: %3
    ENDTRY
  %if %4 == NOFAULT
    EXPECT_NO_FAULT %2
  %else
    EXPECT_FAULT %2, V_NM, ANYERR, %%f
  %endif
%endmacro
    NMTEST 0, "EM=0 MP=0 TS=0: FNINIT runs", {fninit}, NOFAULT
    NMTEST CR0_TS, "TS=1: FNINIT: #NM", {fninit}, V_NM
    NMTEST CR0_TS, "TS=1 MP=0: WAIT runs", {wait}, NOFAULT
    NMTEST CR0_TS | CR0_MP, "TS=1 MP=1: WAIT: #NM", {wait}, V_NM
    NMTEST CR0_MP, "TS=0 MP=1: WAIT runs", {wait}, NOFAULT
    NMTEST CR0_EM, "EM=1: FNINIT: #NM", {fninit}, V_NM
    NMTEST CR0_EM, "EM=1 TS=0: WAIT runs", {wait}, NOFAULT
    NMTEST CR0_EM | CR0_TS, "EM=1 TS=1 MP=0: WAIT runs", {wait}, NOFAULT
    NMTEST CR0_EM | CR0_MP | CR0_TS, "EM=1 MP=1 TS=1: WAIT: #NM", {wait}, V_NM
    NMTEST CR0_EM | CR0_MP, "EM=1 MP=1: FNSTSW AX: #NM", {fnstsw ax}, V_NM
    mov eax, cr0
    and eax, ~(CR0_EM | CR0_MP | CR0_TS)
    mov cr0, eax

    ; ================================================================ #AC
    mov eax, cr0
    or eax, CR0_AM
    mov cr0, eax
    TRY
    push dword EFL_AC | 2
    popfd
    TO_RING3
.ac: mov eax, [SCRATCH + 1]
    TO_RING0
    ENDTRY
    EXPECT_FAULT "CR0.AM=1, EFLAGS.AC=1, CPL3 misaligned dword read: #AC(0)", V_AC, 0, .ac
    TRY
    push dword EFL_AC | 2
    popfd
    mov eax, [SCRATCH + 1]
    push dword 2
    popfd
    ENDTRY
    EXPECT_NO_FAULT "alignment check off at CPL0"
    TRY
    TO_RING3
    mov eax, [SCRATCH + 1]
    TO_RING0
    ENDTRY
    EXPECT_NO_FAULT "alignment check off with EFLAGS.AC=0"
    mov eax, cr0
    and eax, ~CR0_AM
    mov cr0, eax

    ; ================================================================ #GP at CPL 3
%macro GP3 2
    TRY
    TO_RING3
%%f: %2
    TO_RING0
    ENDTRY
    EXPECT_FAULT %1, V_GP, 0, %%f
%endmacro
    GP3 "CPL3 HLT: #GP(0)", {hlt}
    GP3 "CPL3 LGDT: #GP(0)", {lgdt [lib_gdtr]}
    GP3 "CPL3 LIDT: #GP(0)", {lidt [lib_idtr]}
    GP3 "CPL3 MOV CR0, EAX: #GP(0)", {mov cr0, eax}
    GP3 "CPL3 MOV CR3, EAX: #GP(0)", {mov cr3, eax}
    GP3 "CPL3 CLI with IOPL 0: #GP(0)", {cli}
    GP3 "CPL3 STI with IOPL 0: #GP(0)", {sti}
    GP3 "CPL3 RDMSR: #GP(0)", {rdmsr}
    GP3 "CPL3 WRMSR: #GP(0)", {wrmsr}
    GP3 "CPL3 IN with IOPL 0 and no I/O bitmap: #GP(0)", {in al, 0xE9}
    push dword EFL_IOPL3 | 2
    popfd
    TRY
    TO_RING3
    cli
    sti
    cli
    TO_RING0
    ENDTRY
    EXPECT_NO_FAULT "CPL3 CLI/STI with IOPL 3"
    push dword 2
    popfd
    TRY
    mov ecx, 0x12345678
    rdmsr
    ENDTRY
    EXPECT_FAULT "RDMSR of an unimplemented MSR: #GP(0)", V_GP, 0
    TRY
    mov ecx, 0x10
    rdmsr
    ENDTRY
    EXPECT_NO_FAULT "RDMSR of the TSC MSR (0x10) at CPL0"
    ; RDTSC and CR4.TSD
    TRY
    TO_RING3
    rdtsc
    TO_RING0
    ENDTRY
    EXPECT_NO_FAULT "CPL3 RDTSC with CR4.TSD=0"
    mov eax, cr4
    or eax, CR4_TSD
    mov cr4, eax
    GP3 "CPL3 RDTSC with CR4.TSD=1: #GP(0)", {rdtsc}
    TRY
    rdtsc
    ENDTRY
    EXPECT_NO_FAULT "CPL0 RDTSC with CR4.TSD=1"
    mov eax, cr4
    and eax, ~CR4_TSD
    mov cr4, eax

    ; ================================================================ SYSENTER / SYSEXIT
    mov eax, 1
    cpuid
    CHECKM "CPUID.1:EDX.SEP", edx, 1 << 11, 1 << 11
    TRY
    TO_RING3
    sysenter
    TO_RING0
    ENDTRY
    EXPECT_FAULT "SYSENTER with SYSENTER_CS = 0: #GP(0)", V_GP, 0
    xor edx, edx
    mov ecx, 0x174
    mov eax, S_SE_CS
    wrmsr
    mov ecx, 0x175
    mov eax, 0x3E000
    wrmsr
    mov ecx, 0x176
    mov eax, sysenter_target
    wrmsr
    mov ecx, 0x174
    rdmsr
    CHECK "SYSENTER_CS MSR read back", eax, S_SE_CS
    TRY
    push dword EFL_IF | 2
    popfd
    TO_RING3
    mov ecx, 0x17000                ; ESP for SYSEXIT
    mov edx, .sx_back               ; EIP for SYSEXIT
    sysenter
.sx_back:
    mov ax, cs
    movzx eax, ax
    mov [SX_CS], eax
    mov ax, ss
    movzx eax, ax
    mov [SX_SS], eax
    mov [SX_ESP], esp
    TO_RING0
    ENDTRY
    push dword 2
    popfd
    EXPECT_NO_FAULT "SYSENTER from ring 3 and SYSEXIT back"
    CHECK "SYSENTER: CS = SYSENTER_CS", [SE_CS], S_SE_CS
    CHECK "SYSENTER: SS = SYSENTER_CS + 8", [SE_SS], S_SE_CS + 8
    CHECK "SYSENTER: ESP = SYSENTER_ESP", [SE_ESP], 0x3E000
    CHECKM "SYSENTER: IF cleared", [SE_FL], EFL_IF | EFL_VM, 0
    CHECK "SYSEXIT: CS = SYSENTER_CS + 16 | 3", [SX_CS], S_SE_CS + 16 + 3
    CHECK "SYSEXIT: SS = SYSENTER_CS + 24 | 3", [SX_SS], S_SE_CS + 24 + 3
    CHECK "SYSEXIT: ESP = ECX", [SX_ESP], 0x17000
    GP3 "SYSEXIT at CPL3: #GP(0)", {sysexit}
    xor eax, eax
    xor edx, edx
    mov ecx, 0x174
    wrmsr
    TRY
    mov ecx, 0x17000
    mov edx, .sx2
    sysexit
.sx2:
    ENDTRY
    EXPECT_FAULT "SYSEXIT with SYSENTER_CS = 0: #GP(0)", V_GP, 0

    ; ================================================================ triple fault → reset
    mov dword [KEEP], 0x4B454550
    mov dword [STAGE], 1
    call lib_expect_reset
    mov word [tmp0], 0
    mov dword [tmp0 + 2], 0
    lidt [tmp0]                     ; IDT limit 0: nothing can be delivered
    ud2                             ; #UD → #GP → #DF → shutdown
    jmp $

after_triple:
    CHECK "triple fault: the CPU restarted at the reset vector", [was_reset], 1
    CHECK "triple fault: RAM survives the reset", [KEEP], 0x4B454550
    CHECK "triple fault: CR0 at restart = 60000010", [reset_cr0], 0x60000010
    mov eax, 1
    cpuid
    CHECK "triple fault: EDX at restart = signature", [reset_edx], eax
    ; port 0x92 bit 0: fast reset
    mov dword [STAGE], 2
    call lib_expect_reset
    in al, 0x92
    or al, 1
    out 0x92, al
    jmp $                           ; the reset is taken at the next instruction boundary

after_fast_reset:
    mov dword [STAGE], 0
    CHECK "port 0x92 bit 0: fast reset restarts the CPU", [was_reset], 1
    CHECK "fast reset: RAM survives", [KEEP], 0x4B454550
    CHECK "fast reset: CR0 at restart = 60000010", [reset_cr0], 0x60000010
    FINISH

PF_W_ONLY equ 2

; ---------------------------------------------------------------- helpers
cg_target:                          ; never reached in the tests (the stack switch fails)
    retf

sysenter_target:                    ; CPL0 via SYSENTER
    mov ax, cs
    movzx eax, ax
    mov [ss:SE_CS], eax
    mov ax, ss
    movzx eax, ax
    mov [ss:SE_SS], eax
    mov [ss:SE_ESP], esp
    pushfd
    pop dword [ss:SE_FL]
    sysexit

; handler tasks for #DF, #PF, #TS: record error code, back link, CR2, the interrupted EIP,
; then make the interrupted task (TSS0) resume at [F_RESUME] at CPL0 with a sane stack
init_fix_tasks:
    pushad
    mov edi, TSS_DF
    mov eax, fix_df
    mov ebx, 0x3C000
    call mk_tss32
    mov edi, TSS_PF
    mov eax, fix_pf
    mov ebx, 0x3D000
    call mk_tss32
    mov edi, TSS_TS
    mov eax, fix_ts
    mov ebx, 0x3E000
    call mk_tss32
    mov edi, TSS_SS
    mov eax, fix_ss
    mov ebx, 0x3E800
    call mk_tss32
    mov byte [GDT_BASE + S_TSSSS + 5], ACC_TSS32
    mov byte [GDT_BASE + S_TSSDF + 5], ACC_TSS32
    mov byte [GDT_BASE + S_TSSPF + 5], ACC_TSS32
    mov byte [GDT_BASE + S_TSSTS + 5], ACC_TSS32
    mov dword [F_VEC], -1
    mov dword [F_ERR], -1
    mov dword [F_BL], -1
    mov dword [F_CR2], -1
    popad
    ret
fix_df:
    mov ebx, TSS_DF
    mov ecx, V_DF
    jmp fix_common
fix_pf:
    mov ebx, TSS_PF
    mov ecx, V_PF
    jmp fix_common
fix_ss:
    mov ebx, TSS_SS
    mov ecx, V_SS
    jmp fix_common
fix_ts:
    mov ebx, TSS_TS
    mov ecx, V_TS
fix_common:
    cmp dword [F_VEC], -1           ; keep the first event only
    jne .fix
    mov [F_VEC], ecx
    mov eax, [esp]
    mov [F_ERR], eax
    movzx eax, word [ebx]
    mov [F_BL], eax
    mov eax, cr2
    mov [F_CR2], eax
    mov eax, [TSS0 + 0x20]
    mov [F_ESP], eax
.fix:
    mov dword [TSS0 + 4], STACK0_TOP                ; repair ESP0/SS0
    mov dword [TSS0 + 8], SEL_DATA32
    mov eax, [F_RESUME]
    mov [TSS0 + 0x20], eax
    mov dword [TSS0 + 0x24], 2
    mov dword [TSS0 + 0x38], STACK0_TOP
    mov dword [TSS0 + 0x4C], SEL_CODE32
    mov dword [TSS0 + 0x50], SEL_DATA32
    mov dword [TSS0 + 0x48], SEL_DATA32
    mov dword [TSS0 + 0x54], SEL_DATA32
    mov dword [TSS0 + 0x58], SEL_DATA32
    mov dword [TSS0 + 0x5C], SEL_DATA32
    add esp, 4
    iretd
    jmp $
; back in the main task after a fix task: restore the IDT, TSS0 stack fields, CR0.TS
fix_restore:
    call lib_flat_ds
    call lib_restore_idt
    mov dword [TSS0 + 4], STACK0_TOP
    mov dword [TSS0 + 8], SEL_DATA32
    clts
    ret
