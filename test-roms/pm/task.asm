; task.asm — hardware task switches: JMP to a TSS (busy bits, no back link, NT clear),
; CALL to a TSS and IRET back (NT, back link, busy bits both ways), nested CALL two deep,
; task gates in the GDT (also from ring 3) and in the IDT (an exception with its error code
; pushed on the new task's stack; a software INT), a 16-bit TSS, CR3 and LDT loaded from the
; TSS, CR0.TS set by a switch, register state saved in the old TSS, invalid TSS (#TS with
; error code, before and after the commit point), busy/available checks (#GP, #TS), privilege
; checks. References: Intel SDM vol. 3 ch. 7 (task management, table 7-1), vol. 2 JMP, CALL,
; IRET.

%include "lib.inc"

S_TSSA      equ 0x80        ; 32-bit TSS at TSS_A
S_TSSB      equ 0x88
S_TSSB2     equ 0x90
S_TSSC      equ 0x98
S_TSS16     equ 0xA0        ; 16-bit TSS
S_TSSX      equ 0xA8        ; #GP handler task (IDT task gate)
S_TSSY      equ 0xB0        ; INT 0x50 handler task
S_TSSL      equ 0xB8        ; task with its own CR3 and LDT
S_LDTL      equ 0xC0        ; LDT of task L
S_TGB3      equ 0xC8        ; task gate DPL3 → S_TSSB
S_TGB0      equ 0xD0        ; task gate DPL0 → S_TSSB
S_TGDATA    equ 0xD8        ; task gate → a data segment
S_TSSNP     equ 0xE0        ; TSS not present
S_TSSSMALL  equ 0xE8        ; 32-bit TSS with limit 0x66
S_BADLDT    equ 0xF0        ; TSS whose LDT field is a data segment
S_BADCS     equ 0xF8        ; TSS whose CS field is a data segment
S_BADDS     equ 0x100       ; TSS whose DS field is execute-only code
S_XO        equ 0x108       ; execute-only code
S_TSST      equ 0x110       ; #TS handler task (IDT task gate)
L_RW50      equ 0x04        ; LDT_L index 0: data base 0x50000

TSS_A       equ 0x30000
TSS_B       equ 0x30100
TSS_B2      equ 0x30200
TSS_C       equ 0x30300
TSS_16      equ 0x30400
TSS_X       equ 0x30500
TSS_Y       equ 0x30600
TSS_L       equ 0x30700
TSS_BAD     equ 0x30800     ; shared by the invalid-TSS descriptors (rebuilt per test)
TSS_T       equ 0x30900     ; #TS handler task
LDT_L       equ 0x32000
PD2         equ 0x25000     ; task L's page directory (0x50000 → 0x51000)
PT2         equ 0x26000

V           equ ROMVARS
T_EAX       equ V + 0x00
T_ESP       equ V + 0x04
T_FL        equ V + 0x08
T_TR        equ V + 0x0C
T_BL        equ V + 0x10
T_B0        equ V + 0x14    ; access byte of TSS0's descriptor seen by the task
T_B1        equ V + 0x18    ; ... of the running task's descriptor
T_B2        equ V + 0x1C    ; ... of a third descriptor
T_CR0       equ V + 0x20
T_ERR       equ V + 0x24
T_EIP       equ V + 0x28
T_X         equ V + 0x2C
T_RESUME    equ V + 0x30
T_CR3       equ V + 0x34
T_LDTR      equ V + 0x38
T_VAL       equ V + 0x3C
T_DS        equ V + 0x40
T_CS3       equ V + 0x44
N_BL        equ V + 0x48    ; nested: C's back link
N_FL        equ V + 0x4C
N_B0        equ V + 0x50
N_BB2       equ V + 0x54
N_BC        equ V + 0x58
N_AFTER_BC  equ V + 0x5C    ; B2 after C returned: C's access byte
N_AFTER_FL  equ V + 0x60
N_BL2       equ V + 0x64    ; B2's back link

%macro ACCBYTE 2            ; dest var, selector
    push eax
    movzx eax, byte [ss:GDT_BASE + (%2) + 5]
    mov [ss:%1], eax
    pop eax
%endmacro

main:
    GDTDESC S_TSSA, TSS_A, 0x67, ACC_TSS32, 0
    GDTDESC S_TSSB, TSS_B, 0x67, ACC_TSS32, 0
    GDTDESC S_TSSB2, TSS_B2, 0x67, ACC_TSS32, 0
    GDTDESC S_TSSC, TSS_C, 0x67, ACC_TSS32, 0
    GDTDESC S_TSS16, TSS_16, 0x2B, ACC_TSS16, 0
    GDTDESC S_TSSX, TSS_X, 0x67, ACC_TSS32, 0
    GDTDESC S_TSSY, TSS_Y, 0x67, ACC_TSS32, 0
    GDTDESC S_TSSL, TSS_L, 0x67, ACC_TSS32, 0
    GDTDESC S_LDTL, LDT_L, 0xF, ACC_LDT, 0
    SETGATEN GDT_BASE, S_TGB3, S_TSSB, 0, ACC_TASKGATE | DPL(3), 0
    SETGATEN GDT_BASE, S_TGB0, S_TSSB, 0, ACC_TASKGATE, 0
    SETGATEN GDT_BASE, S_TGDATA, SEL_DATA32, 0, ACC_TASKGATE, 0
    GDTDESC S_TSSNP, TSS_BAD, 0x67, ACC_TSS32 & ~ACC_P, 0
    GDTDESC S_TSSSMALL, TSS_BAD, 0x66, ACC_TSS32, 0
    GDTDESC S_BADLDT, TSS_BAD, 0x67, ACC_TSS32, 0
    GDTDESC S_BADCS, TSS_BAD, 0x67, ACC_TSS32, 0
    GDTDESC S_BADDS, TSS_BAD, 0x67, ACC_TSS32, 0
    GDTDESC S_XO, 0, 0xFFFFF, ACC_CODE_XO, FL_G | FL_D
    GDTDESC S_TSST, TSS_T, 0x67, ACC_TSS32, 0
    SETDESC LDT_L, L_RW50, 0x50000, 0xFFFF, ACC_DATA_RW, FL_D

    ; ================================================================ JMP to a TSS
    mov edi, TSS_A
    mov eax, task_a
    mov ebx, 0x38000
    call mk_tss32
    mov dword [TSS_A + 0x28], 0x1111AAAA            ; EAX
    mov dword [TSS_A + 0x24], EFL_ZF | EFL_PF | 2   ; EFLAGS
    mov ax, SEL_DATA32_R3
    mov fs, ax
    mov ebx, 0x12345678
    mov esi, 0x0BADF00D
    TRY
    push dword 2
    popfd
.ja: jmp S_TSSA:0
.ja_next:
    ENDTRY
    EXPECT_NO_FAULT "JMP to a TSS and JMP back"
    CHECK "registers restored from the old TSS (EBX)", ebx, 0x12345678
    CHECK "registers restored from the old TSS (ESI)", esi, 0x0BADF00D
    CHECK "old TSS: saved EBX", [TSS0 + 0x34], 0x12345678
    CHECK "old TSS: saved EIP = after the JMP", [TSS0 + 0x20], .ja_next
    CHECK "old TSS: saved EFLAGS", [TSS0 + 0x24], 2
    CHECK "old TSS: saved ESP", [TSS0 + 0x38], STACK0_TOP
    CHECKM "old TSS: saved CS", [TSS0 + 0x4C], 0xFFFF, SEL_CODE32
    CHECKM "old TSS: saved FS", [TSS0 + 0x58], 0xFFFF, SEL_DATA32_R3
    mov ax, fs
    movzx eax, ax
    CHECK "FS reloaded from the old TSS on the way back", eax, SEL_DATA32_R3
    mov ax, SEL_DATA32
    mov fs, ax
    CHECK "new task: EAX from its TSS", [T_EAX], 0x1111AAAA
    CHECK "new task: ESP from its TSS", [T_ESP], 0x38000
    CHECK "new task: EFLAGS from its TSS (NT=0 after JMP)", [T_FL], EFL_ZF | EFL_PF | 2
    CHECK "new task: TR", [T_TR], S_TSSA
    CHECK "JMP: no back link written", [T_BL], 0
    CHECK "JMP: old TSS descriptor no longer busy", [T_B0], ACC_TSS32
    CHECK "JMP: new TSS descriptor busy", [T_B1], ACC_TSS32_BUSY
    CHECKM "task switch sets CR0.TS", [T_CR0], CR0_TS, CR0_TS
    CHECK "task A's saved EIP (after its JMP back)", [TSS_A + 0x20], task_a.next
    movzx eax, byte [GDT_BASE + S_TSSA + 5]
    CHECK "JMP back: A's descriptor available again", eax, ACC_TSS32
    movzx eax, byte [GDT_BASE + SEL_TSS0 + 5]
    CHECK "JMP back: TSS0 busy again", eax, ACC_TSS32_BUSY
    clts

    ; ================================================================ CALL to a TSS, IRET back
    mov edi, TSS_B
    mov eax, task_b
    mov ebx, 0x39000
    call mk_tss32
    TRY
    push dword EFL_CF | 2
    popfd
    call S_TSSB:0
    pushfd
    pop dword [T_X]
    ENDTRY
    EXPECT_NO_FAULT "CALL to a TSS and IRET back"
    CHECKM "called task: NT=1", [T_FL], EFL_NT, EFL_NT
    CHECK "called task: back link = caller TSS", [T_BL], SEL_TSS0
    CHECK "CALL: caller TSS stays busy", [T_B0], ACC_TSS32_BUSY
    CHECK "CALL: new TSS busy", [T_B1], ACC_TSS32_BUSY
    movzx eax, byte [GDT_BASE + S_TSSB + 5]
    CHECK "IRET: returning task's descriptor available", eax, ACC_TSS32
    movzx eax, byte [GDT_BASE + SEL_TSS0 + 5]
    CHECK "IRET: caller TSS still busy", eax, ACC_TSS32_BUSY
    CHECKM "IRET: caller EFLAGS restored (CF=1, NT=0)", [T_X], EFL_NT | EFL_CF, EFL_CF
    CHECKM "IRET: NT cleared in the returning task's saved EFLAGS", [TSS_B + 0x24], EFL_NT, 0
    CHECK "IRET: returning task's saved EIP (after its IRET)", [TSS_B + 0x20], task_b.next
    clts

    ; ================================================================ nested CALL two deep
    mov edi, TSS_B2
    mov eax, task_b2
    mov ebx, 0x3A000
    call mk_tss32
    mov edi, TSS_C
    mov eax, task_c
    mov ebx, 0x3B000
    call mk_tss32
    TRY
    call S_TSSB2:0
    ENDTRY
    EXPECT_NO_FAULT "nested task CALLs (main -> B2 -> C) and IRETs"
    CHECK "nested: C's back link = B2", [N_BL], S_TSSB2
    CHECK "nested: B2's back link = main", [N_BL2], SEL_TSS0
    CHECKM "nested: NT in C", [N_FL], EFL_NT, EFL_NT
    CHECK "nested: in C, TSS0 busy", [N_B0], ACC_TSS32_BUSY
    CHECK "nested: in C, B2 busy", [N_BB2], ACC_TSS32_BUSY
    CHECK "nested: in C, C busy", [N_BC], ACC_TSS32_BUSY
    CHECK "nested: back in B2, C available", [N_AFTER_BC], ACC_TSS32
    CHECKM "nested: back in B2, NT still 1", [N_AFTER_FL], EFL_NT, EFL_NT
    movzx eax, byte [GDT_BASE + S_TSSB2 + 5]
    CHECK "nested: back in main, B2 available", eax, ACC_TSS32
    clts

    ; ================================================================ task gates in the GDT
    mov edi, TSS_B
    mov eax, task_b
    mov ebx, 0x39000
    call mk_tss32
    mov dword [T_TR], 0
    TRY
    TO_RING3
    call S_TGB3:0
    mov ax, cs
    movzx eax, ax
    mov [T_CS3], eax
    TO_RING0
    ENDTRY
    EXPECT_NO_FAULT "CPL3 CALL through a DPL3 task gate to a DPL0 TSS"
    CHECK "task gate: the task ran", [T_TR], S_TSSB
    CHECK "task gate: back in ring 3 after IRET", [T_CS3], SEL_CODE32_R3
    CHECK "task gate: ring-3 ESP saved in TSS0", [TSS0 + 0x38], STACK3_TOP
    CHECKM "task gate: ring-3 CS saved in TSS0", [TSS0 + 0x4C], 0xFFFF, SEL_CODE32_R3
    clts
    TRY
    TO_RING3
.tg0: call S_TGB0:0
    TO_RING0
    ENDTRY
    EXPECT_FAULT "CPL3 CALL through a DPL0 task gate: #GP(gate sel)", V_GP, S_TGB0, .tg0
    TRY
    TO_RING3
    call S_TSSB:0
    TO_RING0
    ENDTRY
    EXPECT_FAULT "CPL3 CALL to a DPL0 TSS descriptor: #GP(TSS sel)", V_GP, S_TSSB
    TRY
    call S_TGDATA:0
    ENDTRY
    EXPECT_FAULT "task gate to a data segment: #GP(sel)", V_GP, SEL_DATA32

    ; ================================================================ IDT task gates
    mov edi, TSS_X
    mov eax, task_x
    mov ebx, 0x3C000
    call mk_tss32
    IDTGATEN 13, S_TSSX, 0, ACC_TASKGATE
    mov dword [T_RESUME], .gp_resume
    mov ax, S_BEYOND_GDT
.gp: mov ds, ax
.gp_resume:
    call lib_restore_idt
    call lib_flat_ds
    CHECK "#GP through an IDT task gate: error code on the new stack", [T_ERR], S_BEYOND_GDT
    CHECK "#GP task: ESP = TSS.ESP - 4", [T_ESP], 0x3C000 - 4
    CHECKM "#GP task: NT=1", [T_FL], EFL_NT, EFL_NT
    CHECK "#GP task: back link = interrupted task", [T_BL], SEL_TSS0
    CHECK "#GP task: interrupted task's saved EIP = faulting instruction", [T_EIP], .gp
    clts
    mov edi, TSS_Y
    mov eax, task_y
    mov ebx, 0x3D000
    call mk_tss32
    IDTGATEN 0x50, S_TSSY, 0, ACC_TASKGATE | DPL(3)
    mov dword [T_TR], 0
    TRY
    TO_RING3
    int 0x50
    TO_RING0
    ENDTRY
    EXPECT_NO_FAULT "CPL3 INT 0x50 through a DPL3 IDT task gate"
    CHECK "INT task: TR", [T_TR], S_TSSY
    CHECK "INT task: no error code pushed", [T_ESP], 0x3D000
    CHECK "INT task: back link", [T_BL], SEL_TSS0
    clts

    ; ================================================================ 16-bit TSS
    mov edi, TSS_16
    xor eax, eax
    mov ecx, 0x2C / 4
    rep stosd
    mov word [TSS_16 + 0x0E], RM(task16)            ; IP
    mov word [TSS_16 + 0x10], 2                     ; FLAGS
    mov word [TSS_16 + 0x12], 0x1616                ; AX
    mov word [TSS_16 + 0x1A], 0xC000                ; SP
    mov word [TSS_16 + 0x22], SEL_DATA32            ; ES
    mov word [TSS_16 + 0x24], SEL_CODE16            ; CS
    mov word [TSS_16 + 0x26], SEL_DATA16            ; SS
    mov word [TSS_16 + 0x28], SEL_DATA32            ; DS
    mov word [TSS_16 + 0x2A], SEL_LDT               ; LDT
    TRY
    call S_TSS16:0
    ENDTRY
    EXPECT_NO_FAULT "CALL to a 16-bit TSS and 16-bit IRET back"
    CHECK "16-bit task: AX from TSS", [T_EAX], 0x1616
    CHECK "16-bit task: SP from TSS", [T_ESP], 0xC000
    CHECKM "16-bit task: NT=1", [T_FL], EFL_NT, EFL_NT
    CHECK "16-bit task: back link", [T_BL], SEL_TSS0
    CHECK "16-bit task: TR", [T_TR], S_TSS16
    CHECK "16-bit task: busy 16-bit TSS type (3)", [T_B1], ACC_TSS16_BUSY
    movzx eax, word [TSS_16 + 0x0E]
    CHECK "16-bit TSS: saved IP after the IRET", eax, RM(task16.next)
    movzx eax, byte [GDT_BASE + S_TSS16 + 5]
    CHECK "16-bit TSS available after IRET", eax, ACC_TSS16
    clts

    ; ================================================================ CR3 and LDT from the TSS
    call paging_identity
    mov esi, PD_BASE
    mov edi, PD2
    mov ecx, 1024
    rep movsd
    mov esi, PT_BASE
    mov edi, PT2
    mov ecx, 1024
    rep movsd
    mov dword [PD2], PT2 | 7
    mov dword [PT2 + 0x50 * 4], 0x51000 | 7
    mov dword [0x50000], 0xA0A0A0A0
    mov dword [0x51000], 0xB1B1B1B1
    call paging_on
    mov dword [TSS0 + 0x1C], PD_BASE
    mov edi, TSS_L
    mov eax, task_l
    mov ebx, 0x3E000
    call mk_tss32
    mov dword [TSS_L + 0x1C], PD2
    mov dword [TSS_L + 0x60], S_LDTL
    mov dword [TSS_L + 0x54], L_RW50                ; DS from the new LDT
    TRY
    call S_TSSL:0
    ENDTRY
    EXPECT_NO_FAULT "CALL to a task with its own CR3 and LDT"
    CHECK "task L: CR3 loaded from the TSS", [T_CR3], PD2
    CHECK "task L: LDTR loaded from the TSS", [T_LDTR], S_LDTL
    CHECK "task L: DS loaded from the new LDT", [T_DS], L_RW50
    CHECK "task L: DS:0 through the new LDT and page tables", [T_VAL], 0xB1B1B1B1
    mov eax, cr3
    CHECK "back in main: CR3 from TSS0", eax, PD_BASE
    sldt ax
    movzx eax, ax
    CHECK "back in main: LDTR from TSS0", eax, SEL_LDT
    CHECK "TSS0's CR3 field is not written by the switch", [TSS0 + 0x1C], PD_BASE
    call paging_off
    xor eax, eax
    mov cr3, eax
    mov dword [TSS0 + 0x1C], 0
    clts

    ; ================================================================ invalid and busy tasks
    TRY
.busy: jmp SEL_TSS0:0
    ENDTRY
    EXPECT_FAULT "JMP to the busy current TSS: #GP(TSS sel)", V_GP, SEL_TSS0, .busy
    mov dword [TSS0], S_TSSA                        ; back link to an available TSS
    TRY
    push dword EFL_NT | 2
    popfd
.nb: iretd
    ENDTRY
    mov dword [TSS0], 0
    EXPECT_FAULT "IRET with NT=1 to a non-busy TSS: #TS(back link)", V_TS, S_TSSA, .nb
    mov byte [GDT_BASE + S_TSSA + 5], ACC_TSS32_BUSY
    TRY
.cb: call S_TSSA:0
    ENDTRY
    mov byte [GDT_BASE + S_TSSA + 5], ACC_TSS32
    EXPECT_FAULT "CALL to a busy TSS: #GP(TSS sel)", V_GP, S_TSSA, .cb
    TRY
    jmp S_TSSNP:0
    ENDTRY
    EXPECT_FAULT "JMP to a not-present TSS: #NP(sel)", V_NP, S_TSSNP
    mov edi, TSS_BAD
    mov eax, bad_task
    mov ebx, 0x3F000
    call mk_tss32
    TRY
.sm: jmp S_TSSSMALL:0
    ENDTRY
    EXPECT_FAULT "JMP to a 32-bit TSS with limit 0x66: #TS(sel)", V_TS, S_TSSSMALL, .sm
    movzx eax, byte [GDT_BASE + S_TSSSMALL + 5]
    CHECK "TSS limit fault before commit: descriptor not busy", eax, ACC_TSS32
    str ax
    movzx eax, ax
    CHECK "TSS limit fault before commit: TR unchanged", eax, SEL_TSS0
    ; Faults after the commit point are taken in the context of the new task, whose
    ; segment registers may not be usable: the SDM (7.3) wants a task-gate handler.
    IDTGATEN V_TS, S_TSST, 0, ACC_TASKGATE
    mov dword [TSS_BAD + 0x60], SEL_DATA32          ; LDT field: not an LDT
    call init_task_t
    mov dword [T_TR], 0
.bl: jmp S_BADLDT:0
    call after_bad_task
    CHECK "task with an invalid LDT selector: #TS(LDT sel) via a task gate", [T_ERR], SEL_DATA32
    CHECK "#TS after commit: raised in the new task (back link)", [T_BL], S_BADLDT
    CHECK "#TS after commit: new task's saved EIP = its first instruction", [T_EIP], bad_task
    movzx eax, byte [GDT_BASE + S_BADLDT + 5]
    CHECK "#TS after commit: the new task's descriptor was marked busy", eax, ACC_TSS32_BUSY
    mov byte [GDT_BASE + S_BADLDT + 5], ACC_TSS32
    mov edi, TSS_BAD
    mov eax, bad_task
    mov ebx, 0x3F000
    call mk_tss32
    mov dword [TSS_BAD + 0x4C], SEL_DATA32          ; CS field: a data segment
    call init_task_t
    jmp S_BADCS:0
    call after_bad_task
    CHECK "task with a data segment in CS: #TS(CS sel)", [T_ERR], SEL_DATA32
    CHECK "task with a bad CS: back link", [T_BL], S_BADCS
    mov byte [GDT_BASE + S_BADCS + 5], ACC_TSS32
    mov edi, TSS_BAD
    mov eax, bad_task
    mov ebx, 0x3F000
    call mk_tss32
    mov dword [TSS_BAD + 0x54], S_XO                ; DS field: execute-only code
    call init_task_t
    jmp S_BADDS:0
    call after_bad_task
    CHECK "task with execute-only code in DS: #TS(DS sel)", [T_ERR], S_XO
    CHECK "task with a bad DS: back link", [T_BL], S_BADDS
    mov byte [GDT_BASE + S_BADDS + 5], ACC_TSS32
    call lib_restore_idt
    movzx eax, byte [GDT_BASE + SEL_TSS0 + 5]
    CHECK "back in TSS0 after the invalid tasks: busy", eax, ACC_TSS32_BUSY
    clts

    FINISH

S_BEYOND_GDT equ 0x400

; ---------------------------------------------------------------- tasks
task_a:
    mov [ss:T_EAX], eax
    pushfd
    pop dword [ss:T_FL]
    mov [ss:T_ESP], esp
    str ax
    movzx eax, ax
    mov [ss:T_TR], eax
    mov eax, [ss:TSS_A]
    mov [ss:T_BL], eax
    ACCBYTE T_B0, SEL_TSS0
    ACCBYTE T_B1, S_TSSA
    mov eax, cr0
    mov [ss:T_CR0], eax
    mov eax, 0x77777777
    jmp SEL_TSS0:0
.next:
    jmp $

task_b:
    pushfd
    pop dword [ss:T_FL]
    movzx eax, word [ss:TSS_B]
    mov [ss:T_BL], eax
    str ax
    movzx eax, ax
    mov [ss:T_TR], eax
    ACCBYTE T_B0, SEL_TSS0
    ACCBYTE T_B1, S_TSSB
    iretd
.next:
    jmp task_b

task_b2:
    movzx eax, word [ss:TSS_B2]
    mov [ss:N_BL2], eax
    call S_TSSC:0
    ACCBYTE N_AFTER_BC, S_TSSC
    pushfd
    pop dword [ss:N_AFTER_FL]
    iretd
    jmp task_b2

task_c:
    pushfd
    pop dword [ss:N_FL]
    movzx eax, word [ss:TSS_C]
    mov [ss:N_BL], eax
    ACCBYTE N_B0, SEL_TSS0
    ACCBYTE N_BB2, S_TSSB2
    ACCBYTE N_BC, S_TSSC
    iretd
    jmp task_c

task_x:                             ; #GP handler task: [ESP] = error code
    mov eax, [esp]
    mov [ss:T_ERR], eax
    mov [ss:T_ESP], esp
    pushfd
    pop dword [ss:T_FL]
    movzx eax, word [ss:TSS_X]
    mov [ss:T_BL], eax
    mov eax, [ss:TSS0 + 0x20]
    mov [ss:T_EIP], eax
    mov eax, [ss:T_RESUME]          ; resume the interrupted task past the fault
    mov [ss:TSS0 + 0x20], eax
    add esp, 4
    iretd
    jmp task_x

task_y:                             ; INT 0x50 handler task
    mov [ss:T_ESP], esp
    str ax
    movzx eax, ax
    mov [ss:T_TR], eax
    movzx eax, word [ss:TSS_Y]
    mov [ss:T_BL], eax
    iretd
    jmp task_y

task_l:
    mov eax, cr3
    mov [ss:T_CR3], eax
    sldt ax
    movzx eax, ax
    mov [ss:T_LDTR], eax
    mov ax, ds
    movzx eax, ax
    mov [ss:T_DS], eax
    mov eax, [0]
    mov [ss:T_VAL], eax
    iretd
    jmp task_l

bad_task:
    jmp $                           ; never runs: the switch faults after the commit

task_t:                             ; #TS handler task: [ESP] = error code
    mov eax, [esp]
    mov [ss:T_ERR], eax
    movzx eax, word [ss:TSS_T]
    mov [ss:T_BL], eax
    mov eax, [ss:TSS_BAD + 0x20]
    mov [ss:T_EIP], eax
    add esp, 4
    jmp SEL_TSS0:0                  ; back to main (which JMPed away: TSS0 is available)
    jmp task_t

init_task_t:
    pushad
    mov edi, TSS_T
    mov eax, task_t
    mov ebx, 0x3F400
    call mk_tss32
    mov byte [GDT_BASE + S_TSST + 5], ACC_TSS32
    mov dword [T_ERR], -1
    mov dword [T_BL], -1
    mov dword [T_EIP], -1
    popad
    ret

; main resumes here after task_t JMPed back: flat segments again
after_bad_task:
    call lib_flat_ds
    ret

    bits 16
task16:                             ; CS = SEL_CODE16, SS = SEL_DATA16, DS = flat
    mov [T_EAX], ax
    mov word [T_EAX + 2], 0
    mov [T_ESP], sp
    mov word [T_ESP + 2], 0
    pushf
    pop word [T_FL]
    mov word [T_FL + 2], 0
    a32 mov ax, [dword TSS_16]
    mov [T_BL], ax
    mov word [T_BL + 2], 0
    str ax
    mov [T_TR], ax
    mov word [T_TR + 2], 0
    a32 movzx ax, byte [dword GDT_BASE + S_TSS16 + 5]
    mov [T_B1], ax
    mov word [T_B1 + 2], 0
    iret
.next:
    jmp task16
    bits 32
