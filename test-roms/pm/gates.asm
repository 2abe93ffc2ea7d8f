; gates.asm — control transfers through gates: 32- and 16-bit call gates from ring 3 to
; ring 0 (stack switch from the TSS, parameter copy, RETF back with the outer-level segment
; clearing), same-level call gates, ring 3 → ring 1 (TSS.SS1:ESP1), JMP through a call gate,
; gate checks (DPL/RPL, not present, bad targets), interrupt vs trap gates (IF, TF, NT, RF
; in the handler), interrupts from ring 3 with stack switch and error code, INT n/INT3/INTO
; DPL checks, IDT entry checks, 16-bit interrupt gates, IRET/RETF privilege checks, IRET and
; POPF at CPL 3 with IOPL 0. References: Intel SDM vol. 3 §5.8 (calls through gates), §6.12
; (exception and interrupt handling), vol. 2 CALL, JMP, RET, INT n, IRET, POPF.

%include "lib.inc"

S_CG32      equ 0x80        ; 32-bit call gate DPL3 → SEL_CODE32:cg32_target, 2 dwords
S_CG16      equ 0x88        ; 16-bit call gate DPL3 → SEL_CODE16:cg16_target, 2 words
S_CG0       equ 0x90        ; 32-bit call gate DPL0 → SEL_CODE32:same_target, count 2
S_CGR1      equ 0x98        ; 32-bit call gate DPL3 → SEL_CODE32_R1:r1_target, 0 params
S_CGTO3     equ 0xA0        ; call gate DPL0 → ring-3 code (more privileged caller)
S_CGNP      equ 0xA8        ; call gate DPL3, not present
S_CGNULL    equ 0xB0        ; call gate → null selector
S_CGDATA    equ 0xB8        ; call gate → data segment
S_CGCNP     equ 0xC0        ; call gate → not-present code segment
S_CODENP    equ 0xC8        ; code execute/read DPL0, not present
S_CODE16_R3 equ 0xD0        ; 16-bit code DPL3, base ROMBASE, limit 0xFFFF
S_STK16_R3  equ 0xD8        ; 16-bit data DPL3, base 0x10000, limit 0xFFFF
S_CXR       equ 0xE0        ; conforming code execute/read DPL0
S_CGJMP     equ 0xE8        ; call gate DPL0 → SEL_CODE32:jmp_target
S_CGLIM     equ 0xF0        ; call gate → S_CODE1M at an offset beyond its limit
S_CODE1M    equ 0xF8        ; code execute/read DPL0, limit 0xFFFFF bytes

R3_ESP      equ ROMVARS + 0x00
R3_CS       equ ROMVARS + 0x04
R3_DS       equ ROMVARS + 0x08
R3_ES       equ ROMVARS + 0x0C
R3_FS       equ ROMVARS + 0x10
R3_GS       equ ROMVARS + 0x14
R3_SS       equ ROMVARS + 0x18
R3_FL       equ ROMVARS + 0x1C

main:
    SETGATE GDT_BASE, S_CG32, SEL_CODE32, cg32_target, ACC_CALLGATE32 | DPL(3), 2
    SETGATEN GDT_BASE, S_CG16, SEL_CODE16, RM(cg16_target), ACC_CALLGATE16 | DPL(3), 2
    SETGATE GDT_BASE, S_CG0, SEL_CODE32, same_target, ACC_CALLGATE32, 2
    SETGATE GDT_BASE, S_CGR1, SEL_CODE32_R1 & ~3, r1_target, ACC_CALLGATE32 | DPL(3), 0
    SETGATE GDT_BASE, S_CGTO3, SEL_CODE32_R3 & ~3, same_target, ACC_CALLGATE32, 0
    SETGATE GDT_BASE, S_CGNP, SEL_CODE32, same_target, (ACC_CALLGATE32 | DPL(3)) & ~ACC_P, 0
    SETGATE GDT_BASE, S_CGNULL, 0, same_target, ACC_CALLGATE32 | DPL(3), 0
    SETGATE GDT_BASE, S_CGDATA, SEL_DATA32, same_target, ACC_CALLGATE32 | DPL(3), 0
    SETGATE GDT_BASE, S_CGCNP, S_CODENP, same_target, ACC_CALLGATE32 | DPL(3), 0
    SETGATE GDT_BASE, S_CGJMP, SEL_CODE32, jmp_target, ACC_CALLGATE32, 0
    SETGATEN GDT_BASE, S_CGLIM, S_CODE1M, 0x100000, ACC_CALLGATE32, 0
    GDTDESC S_CODENP, 0, 0xFFFFF, ACC_CODE_XR & ~ACC_P, FL_G | FL_D
    GDTDESC S_CODE16_R3, ROMBASE, 0xFFFF, ACC_CODE_XR | DPL(3), 0
    GDTDESC S_STK16_R3, 0x10000, 0xFFFF, ACC_DATA_RW | DPL(3), 0
    GDTDESC S_CXR, 0, 0xFFFFF, ACC_CODE_C_XR, FL_G | FL_D
    GDTDESC S_CODE1M, 0, 0xFFFFF, ACC_CODE_XR, FL_D

    IDTGATE 0x40, SEL_CODE32, h_flags, ACC_INTGATE32
    IDTGATE 0x41, SEL_CODE32, h_r3, ACC_INTGATE32 | DPL(3)
    IDTGATE 0x42, SEL_CODE32, h_flags, ACC_INTGATE32
    IDTGATE 0x43, SEL_CODE32, h_flags, (ACC_INTGATE32 | DPL(3)) & ~ACC_P
    mov dword [IDT_BASE + 0x44 * 8], 0
    mov dword [IDT_BASE + 0x44 * 8 + 4], 0
    IDTGATEN 0x45, SEL_CODE16, RM(h16), ACC_INTGATE16
    IDTGATE 0x46, SEL_CODE32, h_flags, ACC_TRAPGATE32
    IDTGATE 0x47, SEL_DATA32, h_flags, ACC_INTGATE32
    IDTGATE 0x48, S_CODENP, h_flags, ACC_INTGATE32
    IDTGATE 0x49, SEL_CODE32, h_r3, ACC_TRAPGATE32 | DPL(3)

    ; ================================================================ 32-bit call gate, ring 3 → 0
    TRY
    TO_RING3
    push dword 0x11111111
    push dword 0x22222222
    call S_CG32:0
.cg32ret:
    mov [ss:R3_ESP], esp
    SAVESEG R3_CS, cs
    SAVESEG R3_SS, ss
    SAVESEG R3_DS, ds
    SAVESEG R3_ES, es
    SAVESEG R3_FS, fs
    SAVESEG R3_GS, gs
    TO_RING0
    ENDTRY
    EXPECT_NO_FAULT "32-bit call gate ring 3 -> 0 and RETF 8 back"
    CHECK "call gate 32: CS at target", [CAP_CS], SEL_CODE32
    CHECK "call gate 32: SS at target = TSS.SS0", [CAP_SS], SEL_DATA32
    CHECK "call gate 32: ESP at target = TSS.ESP0 - 24", [CAP_ESP], STACK0_TOP - 24
    CHECK "call gate 32: [ESP] = return EIP", [CAPD(0)], .cg32ret
    CHECKM "call gate 32: [ESP+4] = caller CS", [CAPD(1)], 0xFFFF, SEL_CODE32_R3
    CHECK "call gate 32: [ESP+8] = last pushed parameter", [CAPD(2)], 0x22222222
    CHECK "call gate 32: [ESP+12] = first pushed parameter", [CAPD(3)], 0x11111111
    CHECK "call gate 32: [ESP+16] = caller ESP", [CAPD(4)], STACK3_TOP - 8
    CHECKM "call gate 32: [ESP+20] = caller SS", [CAPD(5)], 0xFFFF, SEL_DATA32_R3
    CHECK "RETF 8 to ring 3: ESP after popping the parameters", [R3_ESP], STACK3_TOP
    CHECK "RETF to ring 3: CS", [R3_CS], SEL_CODE32_R3
    CHECK "RETF to ring 3: SS", [R3_SS], SEL_DATA32_R3
    CHECK "RETF to ring 3: DS (DPL0 data) nulled", [R3_DS], 0
    CHECK "RETF to ring 3: ES (DPL0 data) nulled", [R3_ES], 0
    CHECK "RETF to ring 3: FS (DPL3 data) kept", [R3_FS], SEL_DATA32_R3
    CHECK "RETF to ring 3: GS (conforming code) kept", [R3_GS], S_CXR

    ; ================================================================ 16-bit call gate, ring 3 → 0
    TRY
    push dword S_STK16_R3 | 3
    push dword 0x8000
    push dword 2
    push dword S_CODE16_R3 | 3
    push dword RM(r3_code16)
    iretd
    ENDTRY
    EXPECT_FAULT "16-bit call gate ring 3 -> 0 and back (exit via INT 0x31)", 0x31
    CHECK "call gate 16: CS at target", [CAP_CS], SEL_CODE16
    CHECK "call gate 16: ESP at target = TSS.ESP0 - 12", [CAP_ESP], STACK0_TOP - 12
    CHECK "call gate 16: IP, CS words", [CAPD(0)], ((S_CODE16_R3 | 3) << 16) | RM(r3_code16.ret)
    CHECK "call gate 16: parameter words", [CAPD(1)], 0x11112222
    CHECK "call gate 16: caller SP, SS words", [CAPD(2)], ((S_STK16_R3 | 3) << 16) | 0x7FFC
    CHECK "16-bit RETF 4 to ring 3: SP", [R3_ESP], 0x8000
    CHECK "16-bit RETF 4 to ring 3: CS", [R3_CS], S_CODE16_R3 | 3

    ; ================================================================ same-level call gate
    TRY
    mov [CAP_PRE], esp
    call S_CG0:0
.cg0ret:
    ENDTRY
    EXPECT_NO_FAULT "same-level call gate and RETF"
    mov eax, [CAP_PRE]
    sub eax, 8
    CHECK "same level: no stack switch, no parameters copied (ESP - 8)", [CAP_ESP], eax
    CHECK "same level: SS unchanged", [CAP_SS], SEL_DATA32
    CHECK "same level: [ESP] = return EIP", [CAPD(0)], .cg0ret
    CHECKM "same level: [ESP+4] = CS", [CAPD(1)], 0xFFFF, SEL_CODE32

    ; ================================================================ ring 3 → ring 1
    TRY
    TO_RING3
    call S_CGR1:0
    mov [ss:R3_ESP], esp
    TO_RING0
    ENDTRY
    EXPECT_NO_FAULT "call gate ring 3 -> ring 1"
    CHECK "ring 1 target: CS", [CAP_CS], SEL_CODE32_R1
    CHECK "ring 1 target: SS = TSS.SS1", [CAP_SS], SEL_DATA32_R1
    CHECK "ring 1 target: ESP = TSS.ESP1 - 16", [CAP_ESP], STACK1_TOP - 16
    CHECK "back in ring 3: ESP", [R3_ESP], STACK3_TOP

    ; ================================================================ JMP through a call gate
    TRY
    mov [CAP_PRE], esp
    jmp S_CGJMP:0
jmp_back:
    ENDTRY
    EXPECT_NO_FAULT "JMP through a call gate at CPL0"
    CHECK "JMP through a gate pushes nothing", [CAP_ESP], [CAP_PRE]
    CHECK "JMP through a gate: CS", [CAP_CS], SEL_CODE32
    TRY
    TO_RING3
.jg: jmp S_CG32:0
    TO_RING0
    ENDTRY
    EXPECT_FAULT "CPL3 JMP through a call gate to DPL0 code: #GP(code sel)", V_GP, SEL_CODE32, .jg

    ; ================================================================ gate checks
    TRY
    TO_RING3
.g1: call S_CG0:0
    TO_RING0
    ENDTRY
    EXPECT_FAULT "CPL3 CALL through a DPL0 gate: #GP(gate sel)", V_GP, S_CG0, .g1
    TRY
    call (S_CG0 | 3):0
    ENDTRY
    EXPECT_FAULT "CALL through a DPL0 gate with RPL3: #GP(gate sel)", V_GP, S_CG0
    TRY
    call S_CGTO3:0
    ENDTRY
    EXPECT_FAULT "CPL0 CALL through a gate to DPL3 code: #GP(code sel)", V_GP, SEL_CODE32_R3 & ~3
    TRY
    TO_RING3
    call S_CGNP:0
    TO_RING0
    ENDTRY
    EXPECT_FAULT "not-present call gate: #NP(gate sel)", V_NP, S_CGNP
    TRY
    call S_CGNULL:0
    ENDTRY
    EXPECT_FAULT "call gate to the null selector: #GP(0)", V_GP, 0
    TRY
    call S_CGDATA:0
    ENDTRY
    EXPECT_FAULT "call gate to a data segment: #GP(data sel)", V_GP, SEL_DATA32
    TRY
    call S_CGCNP:0
    ENDTRY
    EXPECT_FAULT "call gate to a not-present code segment: #NP(code sel)", V_NP, S_CODENP
    TRY
    mov [CAP_PRE], esp
.g2: call S_CGLIM:0
    ENDTRY
    EXPECT_FAULT "call gate offset beyond the code limit: #GP(0)", V_GP, 0, .g2
    mov eax, [CAP_PRE]
    CHECK "failed gate call leaves ESP", [rec_esp], eax

    ; ================================================================ interrupt vs trap gate
    TRY
    push dword EFL_IF | EFL_NT | 2
    popfd
    int 0x40
    push dword 2
    popfd
    ENDTRY
    EXPECT_NO_FAULT "INT through a 32-bit interrupt gate with NT=1 and IRET"
    CHECKM "interrupt gate: handler IF, TF, NT, RF, VM all 0", [CAP_FL], EFL_IF | EFL_TF | EFL_NT | EFL_RF | EFL_VM, 0
    CHECKM "interrupt gate: pushed EFLAGS keep IF and NT", [CAPD(2)], EFL_IF | EFL_NT, EFL_IF | EFL_NT
    CHECK "interrupt gate same level: ESP - 12", [CAP_ESP], STACK0_TOP - 12
    TRY
    push dword EFL_IF | 2
    popfd
    int 0x46
    push dword 2
    popfd
    ENDTRY
    EXPECT_NO_FAULT "INT through a 32-bit trap gate"
    CHECKM "trap gate: handler IF still 1, NT/TF 0", [CAP_FL], EFL_IF | EFL_TF | EFL_NT, EFL_IF
    ; RF set by IRET before the INT: cleared in the handler
    TRY
    push dword EFL_RF | 2
    push dword SEL_CODE32
    push dword .rf0
    iretd
.rf0:
    int 0x40
.rf1:
    ENDTRY
    EXPECT_NO_FAULT "INT right after IRET with RF=1"
    CHECKM "handler EFLAGS: RF cleared", [CAP_FL], EFL_RF, 0

    ; ================================================================ interrupts from ring 3
    TRY
    TO_RING3
    push dword EFL_IF | 2           ; IOPL 0: POPF at CPL3 cannot set IF (checked below)
    popfd
    mov eax, 0xA5A5A5A5
.i1: int 0x41
.i1r:
    mov [ss:R3_ESP], esp
    SAVESEG R3_DS, ds
    SAVESEG R3_ES, es
    SAVESEG R3_FS, fs
    SAVESEG R3_CS, cs
    TO_RING0
    ENDTRY
    EXPECT_NO_FAULT "INT 0x41 (DPL3 interrupt gate) from ring 3 and IRET back"
    CHECK "ring-3 INT: handler SS = TSS.SS0", [CAP_SS], SEL_DATA32
    CHECK "ring-3 INT: handler ESP = TSS.ESP0 - 20", [CAP_ESP], STACK0_TOP - 20
    CHECK "ring-3 INT: pushed EIP = next instruction", [CAPD(0)], .i1r
    CHECKM "ring-3 INT: pushed CS", [CAPD(1)], 0xFFFF, SEL_CODE32_R3
    CHECK "ring-3 INT: pushed EFLAGS (IF not set by CPL3 POPF)", [CAPD(2)], 2
    CHECK "ring-3 INT: pushed ESP", [CAPD(3)], STACK3_TOP
    CHECKM "ring-3 INT: pushed SS", [CAPD(4)], 0xFFFF, SEL_DATA32_R3
    CHECK "IRET to ring 3: DS (DPL0) nulled", [R3_DS], 0
    CHECK "IRET to ring 3: ES (DPL0) nulled", [R3_ES], 0
    CHECK "IRET to ring 3: FS (DPL3) kept", [R3_FS], SEL_DATA32_R3
    CHECK "IRET to ring 3: ESP", [R3_ESP], STACK3_TOP
    ; exception with error code from ring 3: raw frame on the ring-0 stack
    IDTGATE 13, SEL_CODE32, h_gp_raw, ACC_INTGATE32
    TRY
    TO_RING3
    mov ax, SEL_DATA32
.i2: mov ds, ax
    TO_RING0
    ENDTRY
    call lib_restore_idt
    EXPECT_FAULT "ring-3 #GP through a custom handler", V_GP, SEL_DATA32, .i2
    CHECK "ring-3 #GP: handler ESP = TSS.ESP0 - 24", [CAP_ESP], STACK0_TOP - 24
    CHECK "ring-3 #GP: [ESP] = error code", [CAPD(0)], SEL_DATA32
    CHECK "ring-3 #GP: [ESP+4] = faulting EIP", [CAPD(1)], .i2
    CHECKM "ring-3 #GP: [ESP+8] = CS", [CAPD(2)], 0xFFFF, SEL_CODE32_R3
    CHECK "ring-3 #GP: [ESP+16] = ESP", [CAPD(4)], STACK3_TOP
    CHECKM "ring-3 #GP: [ESP+20] = SS", [CAPD(5)], 0xFFFF, SEL_DATA32_R3

    ; interrupt gate to a conforming code segment: no privilege change, no stack switch
    IDTGATE 0x4A, S_CXR, h_conf, ACC_INTGATE32 | DPL(3)
    TRY
    TO_RING3
    int 0x4A
.cf:
    TO_RING0
    ENDTRY
    EXPECT_NO_FAULT "CPL3 INT through a gate to conforming DPL0 code"
    CHECK "conforming handler: CS = S_CXR | 3 (CPL stays 3)", [CAP_CS], S_CXR | 3
    CHECK "conforming handler: SS unchanged", [CAP_SS], SEL_DATA32_R3
    CHECK "conforming handler: frame on the ring-3 stack (ESP - 12)", [CAP_ESP], STACK3_TOP - 12
    CHECK "conforming handler: pushed EIP", [CAPD(0)], .cf

    ; ================================================================ INT n DPL and IDT checks
    TRY
    TO_RING3
.d1: int 0x40
    TO_RING0
    ENDTRY
    EXPECT_FAULT "CPL3 INT n through a DPL0 gate: #GP(n*8+2)", V_GP, 0x40 * 8 + 2, .d1
    TRY
    TO_RING3
.d2: int3
    TO_RING0
    ENDTRY
    EXPECT_FAULT "CPL3 INT3 through the DPL0 gate 3: #GP(3*8+2)", V_GP, 3 * 8 + 2, .d2
    TRY
    TO_RING3
    mov al, 0x7F
    add al, 1                       ; OF=1
    into
    TO_RING0
    ENDTRY
    EXPECT_FAULT "CPL3 INTO through the DPL0 gate 4: #GP(4*8+2)", V_GP, 4 * 8 + 2
    TRY
    TO_RING3
    int 0x49                        ; DPL3 trap gate: allowed
    TO_RING0
    ENDTRY
    EXPECT_NO_FAULT "CPL3 INT through a DPL3 trap gate"
    TRY
    TO_RING3
.d3: ud2
    TO_RING0
    ENDTRY
    EXPECT_FAULT "CPL3 exception (#UD) through a DPL0 gate: delivered (no DPL check)", V_UD, ANYERR, .d3
    TRY
    int 0x43
    ENDTRY
    EXPECT_FAULT "INT through a not-present gate: #NP(n*8+2)", V_NP, 0x43 * 8 + 2
    TRY
    int 0x44
    ENDTRY
    EXPECT_FAULT "INT through an all-zero IDT entry: #GP(n*8+2)", V_GP, 0x44 * 8 + 2
    TRY
    int 0x47
    ENDTRY
    EXPECT_FAULT "interrupt gate to a data segment: #GP(sel)", V_GP, SEL_DATA32
    TRY
    int 0x48
    ENDTRY
    EXPECT_FAULT "interrupt gate to a not-present code segment: #NP(sel)", V_NP, S_CODENP
    mov word [tmp0], 0x40 * 8 - 1
    mov dword [tmp0 + 2], IDT_BASE
    lidt [tmp0]
    TRY
    int 0x40
    ENDTRY
    lidt [lib_idtr]
    EXPECT_FAULT "INT beyond the IDT limit: #GP(n*8+2)", V_GP, 0x40 * 8 + 2

    ; ================================================================ 16-bit interrupt gate
    TRY
    jmp SEL_CODE16:RM(c16_int)
c16_back:
    ENDTRY
    EXPECT_NO_FAULT "INT through a 16-bit interrupt gate and 16-bit IRET"
    CHECK "16-bit gate: ESP - 6", [CAP_ESP], STACK0_TOP - 6
    CHECK "16-bit gate: pushed IP, CS", [CAPD(0)], (SEL_CODE16 << 16) | RM(c16_int.ret)
    CHECKM "16-bit gate: pushed FLAGS (IF=0, IOPL=0)", [CAPD(1)], 0xFF02, 2
    CHECK "16-bit gate: handler CS", [CAP_CS], SEL_CODE16

    ; ================================================================ IRET / RETF checks
    TRY
    TO_RING3
    push dword SEL_CODE32
    push dword .x1
    pushfd
    push dword SEL_CODE32
    push dword .x1
.x0: iretd
.x1:
    TO_RING0
    ENDTRY
    EXPECT_FAULT "CPL3 IRET to ring-0 code: #GP(return CS)", V_GP, SEL_CODE32, .x0
    TRY
    TO_RING3
    push dword SEL_CODE32
    push dword .x3
.x2: retf
.x3:
    TO_RING0
    ENDTRY
    EXPECT_FAULT "CPL3 RETF to ring-0 code: #GP(return CS)", V_GP, SEL_CODE32, .x2
    TRY
    push dword SEL_DATA32_R3 & ~3
    push dword STACK3_TOP
    push dword 2
    push dword SEL_CODE32_R3
    push dword .x5
.x4: iretd
.x5:
    TO_RING0
    ENDTRY
    EXPECT_FAULT "IRET to ring 3 with SS.RPL != 3: #GP(SS sel)", V_GP, SEL_DATA32_R3 & ~3, .x4
    TRY
    push dword SEL_DATA32 | 3
    push dword STACK3_TOP
    push dword 2
    push dword SEL_CODE32_R3
    push dword .x5
    iretd
    ENDTRY
    EXPECT_FAULT "IRET to ring 3 with a DPL0 SS: #GP(SS sel)", V_GP, SEL_DATA32
    TRY
    push dword 2
    push dword S_CODENP
    push dword .x6
    iretd
.x6:
    ENDTRY
    EXPECT_FAULT "IRET to a not-present code segment: #NP(sel)", V_NP, S_CODENP
    TRY
    push dword 2
    push dword S_CODE1M
    push dword 0x100000
    iretd
    ENDTRY
    EXPECT_FAULT "IRET beyond the code segment limit: #GP(0)", V_GP, 0
    ; IRET and POPF at CPL3 with IOPL 0 leave IF and IOPL alone (no fault)
    TRY
    TO_RING3
    push dword EFL_IF | EFL_IOPL3 | EFL_CF | 2
    popfd
    pushfd
    pop dword [ss:R3_FL]
    push dword EFL_IF | EFL_IOPL3 | EFL_ZF | 2
    push dword SEL_CODE32_R3
    push dword .x7
    iretd
.x7:
    pushfd
    pop dword [ss:R3_ESP]
    TO_RING0
    ENDTRY
    EXPECT_NO_FAULT "POPF/IRET at CPL3 with IOPL0"
    CHECKM "POPF at CPL3: IF, IOPL unchanged, CF loaded", [R3_FL], EFL_IF | EFL_IOPL3 | EFL_CF, EFL_CF
    CHECKM "IRET at CPL3: IF, IOPL unchanged, ZF loaded", [R3_ESP], EFL_IF | EFL_IOPL3 | EFL_ZF, EFL_ZF
    ; POPF at CPL0 can set IOPL and IF
    push dword EFL_IOPL3 | EFL_IF | 2
    popfd
    pushfd
    pop eax
    push dword 2
    popfd
    CHECKM "POPF at CPL0 sets IOPL and IF", eax, EFL_IOPL3 | EFL_IF, EFL_IOPL3 | EFL_IF

    FINISH

; ---------------------------------------------------------------- gate targets
cg32_target:                        ; CPL0 via S_CG32
    CAPSTACK 6
    mov ax, SEL_DATA32
    mov ds, ax
    mov es, ax
    mov ax, SEL_DATA32_R3
    mov fs, ax
    mov ax, S_CXR
    mov gs, ax
    retf 8

same_target:
    CAPSTACK 2
    retf

r1_target:
    CAPSTACK 4
    retf

jmp_target:
    mov [ss:CAP_ESP], esp
    SAVESEG CAP_CS, cs
    jmp jmp_back

h_flags:                            ; records handler EFLAGS and 3 frame dwords
    CAPSTACK 3
    push eax
    pushfd
    pop eax
    mov [ss:CAP_FL], eax
    pop eax
    iretd

h_r3:                               ; from ring 3: 5 frame dwords, then load DPL0 DS/ES
    CAPSTACK 5
    push eax
    mov ax, SEL_DATA32
    mov ds, ax
    mov es, ax
    pop eax
    iretd

h_conf:                             ; conforming code at CPL3: SS is the ring-3 data segment
    CAPSTACK 3
    iretd

h_gp_raw:                           ; #GP with error code: record the raw frame, then the library
    CAPSTACK 6
    jmp lib_stub_13

; ---------------------------------------------------------------- 16-bit code
    bits 16
r3_code16:                          ; CPL3, CS = S_CODE16_R3 (base ROMBASE), SS = 16-bit stack
    mov ax, SEL_DATA32_R3
    mov ds, ax
    push word 0x1111
    push word 0x2222
    call S_CG16:0
.ret:
    mov [R3_ESP], esp
    mov word [R3_CS + 2], 0
    mov [R3_CS], cs
    int 0x31

cg16_target:                        ; CPL0, CS = SEL_CODE16, SS:ESP from TSS0 (32-bit SS)
    mov [ss:CAP_ESP], esp
    mov ebx, [ss:esp]
    mov [ss:CAPD(0)], ebx
    mov ebx, [ss:esp + 4]
    mov [ss:CAPD(1)], ebx
    mov ebx, [ss:esp + 8]
    mov [ss:CAPD(2)], ebx
    mov word [ss:CAP_CS + 2], 0
    mov [ss:CAP_CS], cs
    retf 4

c16_int:                            ; CPL0, CS = SEL_CODE16
    int 0x45
.ret:
    jmp dword SEL_CODE32:c16_back

h16:                                ; 16-bit interrupt gate handler
    mov [ss:CAP_ESP], esp
    mov ebx, [ss:esp]
    mov [ss:CAPD(0)], ebx
    movzx ebx, word [ss:esp + 4]
    mov [ss:CAPD(1)], ebx
    mov word [ss:CAP_CS + 2], 0
    mov [ss:CAP_CS], cs
    iret
    bits 32
