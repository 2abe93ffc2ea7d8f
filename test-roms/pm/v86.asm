; v86.asm — virtual-8086 mode: entry by IRET (VM in the pushed EFLAGS, ES/DS/FS/GS popped)
; and by a task switch (TSS with EFLAGS.VM), real-mode addressing inside V86, the
; IOPL-sensitive instructions with IOPL < 3 (CLI, STI, PUSHF(D), POPF(D), INT n, IRET →
; #GP(0) to the ring-0 handler with the full V86 frame) and with IOPL = 3 (allowed; INT n goes
; through the IDT to ring 0 and IRET returns to V86), INT3 not IOPL-sensitive, IN/OUT
; checked against the TSS I/O bitmap whatever the IOPL, privileged instructions and
; LAR/ARPL in V86, the 64 KiB offset limit, return to protected mode through interrupts.
; No VME (CR4.VME = 0; CPUID does not advertise it). References: Intel SDM vol. 3 ch. 20
; (8086 emulation), §6.12.1 (interrupts from V86), vol. 2 INT n, IRET, POPF, PUSHF, IN/OUT.

%include "lib.inc"

V86_SS      equ 0x2000          ; V86 stack 0x2000:0xF000 = linear 0x2F000
V86_SP      equ 0xF000
V_ES        equ 0x1234
V_DS        equ 0x2345
V_FS        equ 0x3456
V_GS        equ 0x4567
S_TSSV      equ 0x80            ; TSS of a V86 task
TSS_V       equ 0x30000
IOBASE      equ 0x68            ; I/O bitmap offset in TSS0
PORT_OK     equ 0x300           ; allowed by the bitmap
PORT_NO     equ 0x301           ; denied by the bitmap

; results written from V86 code (with DS = 0)
R           equ ROMVARS
R_DS        equ R + 0x00
R_ES        equ R + 0x04
R_FS        equ R + 0x08
R_GS        equ R + 0x0C
R_SS        equ R + 0x10
R_CS        equ R + 0x14
R_SP        equ R + 0x18
R_FL32      equ R + 0x1C        ; PUSHFD image in V86
R_FL_POPF   equ R + 0x20        ; FLAGS after POPF of IOPL 0, IF 1 (IOPL 3 code)
R_DS_AFTER  equ R + 0x24        ; DS after INT/IRET through ring 0
R_IRET      equ R + 0x28        ; 1 when the V86 IRET reached its target
R_IN        equ R + 0x2C        ; byte read from port 0xE9
R_DONE      equ R + 0x30

; V86_ENTER label, iopl: IRET from CPL 0 into V86 code at F000:RM(label)
%macro V86_ENTER 2
    push dword V_GS
    push dword V_FS
    push dword V_DS
    push dword V_ES
    push dword V86_SS
    push dword V86_SP
    push dword EFL_VM | ((%2) << 12) | 2
    push dword 0xF000
    push dword RM(%1)
    iretd
%endmacro
; one IOPL-sensitive instruction with IOPL 0: #GP(0) at its own IP
%macro V86_GP0 3            ; name, label of the snippet, label of the faulting instruction
    TRY
    V86_ENTER %2, 0
    ENDTRY
    EXPECT_FAULT %1, V_GP, 0, RM(%3)
%endmacro

main:
    IDTGATE 0x42, SEL_CODE32, h42, ACC_INTGATE32 | DPL(3)
    IDTGATE V_BP, SEL_CODE32, lib_stub_3, ACC_INTGATE32 | DPL(3)
    ; I/O bitmap in TSS0: everything denied except PORT_OK and 0xE9
    mov edi, TSS0 + IOBASE
    mov al, 0xFF
    mov ecx, 0x2000 + 1
    rep stosb
    mov eax, 0xE9
    btr [TSS0 + IOBASE], eax
    mov eax, PORT_OK
    btr [TSS0 + IOBASE], eax
    mov word [TSS0 + 0x66], IOBASE
    mov word [GDT_BASE + SEL_TSS0], IOBASE + 0x2000   ; TSS limit covers the bitmap + 0xFF byte
    mov byte [GDT_BASE + SEL_TSS0 + 5], ACC_TSS32     ; reload TR for the new limit
    mov ax, SEL_TSS0
    ltr ax
    mov dword [0x23450 + 0x10], 0

    ; ================================================================ IRET into V86, IOPL 3
    TRY
    V86_ENTER v86_main, 3
    ENDTRY
    EXPECT_FAULT "IOPL3 V86 program runs and leaves through INT 0x31", 0x31
    CHECK "V86 entry: DS popped from the IRET frame", [R_DS], V_DS
    CHECK "V86 entry: ES", [R_ES], V_ES
    CHECK "V86 entry: FS", [R_FS], V_FS
    CHECK "V86 entry: GS", [R_GS], V_GS
    CHECK "V86 entry: SS", [R_SS], V86_SS
    CHECK "V86 entry: CS", [R_CS], 0xF000
    CHECK "V86 entry: SP", [R_SP], V86_SP
    CHECK "V86 real-mode addressing: DS*16 + offset", [0x23450 + 0x10], 0xC0DE1234
    CHECKM "V86 PUSHFD image: VM and RF clear, IOPL 3", [R_FL32], EFL_VM | EFL_RF | EFL_IOPL3, EFL_IOPL3
    CHECKM "V86 POPF (IOPL3): IF loaded, IOPL unchanged", [R_FL_POPF], EFL_IF | EFL_IOPL3, EFL_IF | EFL_IOPL3
    CHECK "V86 16-bit IRET (IOPL3) reaches its target", [R_IRET], 1
    CHECK "V86 INT 0x42 ran the ring-0 handler", [CAP_COUNT], 1
    CHECK "V86 INT: handler SS = TSS.SS0", [CAP_SS], SEL_DATA32
    CHECK "V86 INT: handler ESP = ESP0 - 36", [CAP_ESP], STACK0_TOP - 36
    CHECK "V86 INT: pushed EIP", [CAPD(0)], RM(v86_main.after42)
    CHECK "V86 INT: pushed CS", [CAPD(1)], 0xF000
    CHECKM "V86 INT: pushed EFLAGS has VM and IOPL 3", [CAPD(2)], EFL_VM | EFL_IOPL3, EFL_VM | EFL_IOPL3
    CHECK "V86 INT: pushed ESP", [CAPD(3)], V86_SP
    CHECK "V86 INT: pushed SS", [CAPD(4)], V86_SS
    CHECK "V86 INT: pushed ES", [CAPD(5)], V_ES
    CHECK "V86 INT: pushed DS", [CAPD(6)], V_DS
    CHECK "V86 INT: pushed FS", [CAPD(7)], V_FS
    CHECK "V86 INT: pushed GS", [CAPD(8)], V_GS
    CHECK "V86 INT: handler DS = 0", [CAP_DS], 0
    CHECK "V86 INT: handler ES = 0", [CAP_ES], 0
    CHECK "V86 INT: handler FS = 0", [CAP_FS], 0
    CHECK "V86 INT: handler GS = 0", [CAP_GS], 0
    CHECK "IRET from ring 0 back to V86 restores DS", [R_DS_AFTER], V_DS
    CHECK "V86 IN from a bitmap-allowed port (IOPL 3)", [R_IN], 0xE9
    CHECK "V86 program completed", [R_DONE], 1

    ; ================================================================ IOPL 0: #GP(0) with the V86 frame
    TRY
    V86_ENTER v86_cli, 0
    ENDTRY
    EXPECT_FAULT "V86 IOPL0: CLI: #GP(0)", V_GP, 0, RM(v86_cli.f)
    CHECK "V86 #GP frame: CS", [rec_cs], 0xF000
    CHECKM "V86 #GP frame: EFLAGS VM=1, IOPL 0", [rec_eflags], EFL_VM | EFL_IOPL3, EFL_VM
    CHECK "V86 #GP frame: ESP", [rec_esp], V86_SP
    CHECK "V86 #GP frame: SS", [rec_ss], V86_SS
    CHECK "V86 #GP frame: ES", [rec_es], V_ES
    CHECK "V86 #GP frame: DS", [rec_ds], V_DS
    CHECK "V86 #GP frame: FS", [rec_fs], V_FS
    CHECK "V86 #GP frame: GS", [rec_gs], V_GS
    CHECK "V86 #GP: frame of 9 dwords + error code at TSS.ESP0", [rec_hesp], STACK0_TOP - 36
    CHECK "V86 #GP: handler DS loaded with 0", [rec_dsreg], 0
    CHECK "V86 #GP: handler ES loaded with 0", [rec_esreg], 0
    CHECK "V86 #GP: handler FS loaded with 0", [rec_fsreg], 0
    CHECK "V86 #GP: handler GS loaded with 0", [rec_gsreg], 0
    V86_GP0 "V86 IOPL0: STI: #GP(0)", v86_sti, v86_sti.f
    V86_GP0 "V86 IOPL0: PUSHF: #GP(0)", v86_pushf, v86_pushf.f
    V86_GP0 "V86 IOPL0: PUSHFD: #GP(0)", v86_pushfd, v86_pushfd.f
    V86_GP0 "V86 IOPL0: POPF: #GP(0)", v86_popf, v86_popf.f
    CHECK "V86 #GP(0) on POPF leaves SP", [rec_esp], V86_SP - 2
    V86_GP0 "V86 IOPL0: POPFD: #GP(0)", v86_popfd, v86_popfd.f
    V86_GP0 "V86 IOPL0: INT 0x42: #GP(0)", v86_int, v86_int.f
    V86_GP0 "V86 IOPL0: INT 3 (CD 03): #GP(0)", v86_intcd3, v86_intcd3.f
    V86_GP0 "V86 IOPL0: IRET: #GP(0)", v86_iret, v86_iret.f
    TRY
    V86_ENTER v86_int3, 0
    ENDTRY
    EXPECT_FAULT "V86 IOPL0: INT3 (CC) is not IOPL-sensitive: #BP through a DPL3 gate", V_BP, ANYERR, RM(v86_int3.after)
    CHECKM "V86 #BP frame: VM=1", [rec_eflags], EFL_VM, EFL_VM

    ; ================================================================ I/O bitmap in V86
    TRY
    V86_ENTER v86_out_ok, 0
    ENDTRY
    EXPECT_FAULT "V86 IOPL0: OUT to a bitmap-allowed port (no fault, then INT3)", V_BP
    V86_GP0 "V86 IOPL0: OUT to a bitmap-denied port: #GP(0)", v86_out_no, v86_out_no.f
    V86_GP0 "V86 IOPL0: word IN touching a denied port: #GP(0)", v86_inw_no, v86_inw_no.f
    TRY
    V86_ENTER v86_out_no, 3
    ENDTRY
    EXPECT_FAULT "V86 IOPL3: the bitmap still applies: #GP(0)", V_GP, 0, RM(v86_out_no.f)

    ; ================================================================ other V86 restrictions
    V86_GP0 "V86: HLT: #GP(0)", v86_hlt, v86_hlt.f
    TRY
    V86_ENTER v86_movcr, 3
    ENDTRY
    EXPECT_FAULT "V86: MOV EAX, CR0: #GP(0)", V_GP, 0, RM(v86_movcr.f)
    TRY
    V86_ENTER v86_lar, 3
    ENDTRY
    EXPECT_FAULT "V86: LAR: #UD", V_UD, ANYERR, RM(v86_lar.f)
    TRY
    V86_ENTER v86_arpl, 3
    ENDTRY
    EXPECT_FAULT "V86: ARPL: #UD", V_UD, ANYERR, RM(v86_arpl.f)
    TRY
    V86_ENTER v86_wrap, 3
    ENDTRY
    EXPECT_FAULT "V86: word access at offset 0xFFFF: #GP(0)", V_GP, 0, RM(v86_wrap.f)

    ; INT from V86 through a gate to non-ring-0 code: #GP(selector)
    IDTGATE 0x43, SEL_CODE32_R3 & ~3, h42, ACC_INTGATE32 | DPL(3)
    TRY
    V86_ENTER v86_int43, 3
    ENDTRY
    EXPECT_FAULT "V86 INT through a gate to DPL3 code: #GP(code sel)", V_GP, SEL_CODE32_R3 & ~3, RM(v86_int43.f)
    ; page faults in V86 are user-mode accesses
    call paging_identity
    and dword [PT_BASE + (0x25000 >> 12) * 4], ~4   ; the page of DS:0x2000 becomes supervisor
    call paging_on
    TRY
    V86_ENTER v86_pf, 3
    ENDTRY
    call paging_off
    EXPECT_FAULT "V86 read of a supervisor page: #PF(P|U)", V_PF, 5, RM(v86_pf.f)
    CHECK "V86 #PF: CR2 = DS*16 + offset", [rec_cr2], V_DS * 16 + 0x2000
    CHECKM "V86 #PF frame: VM=1", [rec_eflags], EFL_VM, EFL_VM

    ; ================================================================ V86 by a task switch
    mov edi, TSS_V
    xor eax, eax
    mov ecx, 0x68 / 4
    rep stosd
    mov dword [TSS_V + 0x04], 0x3F000               ; ESP0
    mov dword [TSS_V + 0x08], SEL_DATA32            ; SS0
    mov dword [TSS_V + 0x20], RM(v86_task)          ; EIP
    mov dword [TSS_V + 0x24], EFL_VM | EFL_IOPL3 | 2
    mov dword [TSS_V + 0x38], V86_SP
    mov dword [TSS_V + 0x48], V_ES
    mov dword [TSS_V + 0x4C], 0xF000
    mov dword [TSS_V + 0x50], V86_SS
    mov dword [TSS_V + 0x54], V_DS
    mov dword [TSS_V + 0x58], V_FS
    mov dword [TSS_V + 0x5C], V_GS
    mov dword [TSS_V + 0x60], SEL_LDT
    mov word [TSS_V + 0x66], 0x68
    GDTDESC S_TSSV, TSS_V, 0x67, ACC_TSS32, 0
    mov dword [R_DS], 0
    mov dword [tmp1], 0
    TRY
    jmp S_TSSV:0
    ENDTRY
    str ax                          ; first pass: in the V86 task at CPL0; second: main
    cmp ax, SEL_TSS0
    je .vt_main
    movzx eax, ax
    mov [ss:tmp1], eax
    jmp SEL_TSS0:0
.vt_main:
    call lib_flat_ds
    EXPECT_FAULT "task switch into V86 (TSS EFLAGS.VM) and INT 0x31 out", 0x31
    CHECK "V86 task: DS loaded as a real-mode segment", [R_DS], V_DS
    CHECK "V86 task: CS", [R_CS], 0xF000
    CHECKM "V86 task: INT frame EFLAGS VM=1", [rec_eflags], EFL_VM, EFL_VM
    CHECK "V86 task: INT frame ESP", [rec_esp], V86_SP
    CHECK "V86 task: ring-0 handler used the task's ESP0", [rec_hesp], 0x3F000 - 36
    CHECK "V86 task: handler ran in the V86 task", [tmp1], S_TSSV
    clts

    FINISH

; ring-0 handler for INT 0x42 from V86: capture the frame and the handler's segments, IRET
h42:
    CAPSTACK 9
    SAVESEG CAP_DS, ds
    SAVESEG CAP_ES, es
    SAVESEG CAP_FS, fs
    SAVESEG CAP_GS, gs
    inc dword [ss:CAP_COUNT]
    iretd

; ---------------------------------------------------------------- V86 code (CS = F000)
    bits 16
v86_main:
    mov ax, ds
    mov bx, es
    mov cx, fs
    mov dx, gs
    mov si, ss
    mov di, cs
    mov bp, sp
    mov dword [0x10], 0xC0DE1234    ; DS = V_DS: linear 0x23460
    push word 0
    pop ds
    mov [R_DS], ax
    mov [R_ES], bx
    mov [R_FS], cx
    mov [R_GS], dx
    mov [R_SS], si
    mov [R_CS], di
    mov [R_SP], bp
    pushfd
    pop dword [R_FL32]
    cli
    sti
    push word 0x0200                ; IF=1, IOPL=0
    popf
    pushf
    pop word [R_FL_POPF]
    cli
    pushf                           ; a real-mode style IRET
    push cs
    push word RM(.iret_target)
    iret
    jmp .skip
.iret_target:
    mov dword [R_IRET], 1
.skip:
    push word V_DS
    pop ds
    int 0x42
.after42:
    mov ax, ds
    push word 0
    pop ds
    mov [R_DS_AFTER], ax
    in al, 0xE9
    mov [R_IN], al
    mov dword [R_DONE], 1
    int 0x31

v86_cli:
.f: cli
    int 0x31
v86_sti:
.f: sti
    int 0x31
v86_pushf:
.f: pushf
    int 0x31
v86_pushfd:
.f: pushfd
    int 0x31
v86_popf:
    push word 0
.f: popf
    int 0x31
v86_popfd:
    push dword 0
.f: popfd
    int 0x31
v86_int:
.f: int 0x42
    int 0x31
v86_intcd3:
.f: db 0xCD, 0x03
    int 0x31
v86_iret:
    push word 2
    push cs
    push word RM(.t)
.f: iret
.t: int 0x31
v86_int3:
    int3
.after:
    int 0x31
v86_out_ok:
    mov dx, PORT_OK
    out dx, al
    in al, dx
    int3
v86_out_no:
    mov dx, PORT_NO
.f: out dx, al
    int3
v86_inw_no:
    mov dx, PORT_NO - 1
.f: in ax, dx                       ; ports 0x300 (allowed) and 0x301 (denied)
    int3
v86_hlt:
.f: hlt
    int 0x31
v86_movcr:
.f: mov eax, cr0
    int 0x31
v86_lar:
.f: lar ax, bx
    int 0x31
v86_arpl:
.f: arpl ax, bx
    int 0x31
v86_wrap:
    mov bx, 0xFFFF
.f: mov ax, [bx]
    int 0x31

v86_int43:
.f: int 0x43
    int 0x31
v86_pf:
    mov bx, 0x2000
.f: mov ax, [bx]                    ; linear 0x23450 + 0x2000 = 0x25450 (page 0x25000)
    int 0x31

v86_task:
    mov ax, ds
    mov bx, cs
    push word 0
    pop ds
    mov [R_DS], ax
    mov [R_CS], bx
    int 0x31
    bits 32
