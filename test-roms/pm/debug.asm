; debug.asm — debug registers and single step: DR0-DR3 instruction breakpoints (#DB fault
; before the instruction, DR6.Bn, RF to resume, re-trigger without RF), data write and
; read/write breakpoints with LEN 1/2/4 (trap after the access, alignment of the range),
; I/O breakpoints with CR4.DE, DR7.GD (#DB on MOV DR, DR6.BD, GD cleared), TF single step
; (DR6.BS, first trap after the instruction following POPF), the MOV SS / POP SS shadow
; (no single-step trap and a delayed data breakpoint), STI not delaying single step, the
; TSS T bit (DR6.BT), DR6/DR7 reserved bits, DR4/DR5 aliasing (CR4.DE=0) and #UD
; (CR4.DE=1), MOV DR at CPL3. References: Intel SDM vol. 3 ch. 17 (17.2 debug registers,
; 17.3 debug exceptions), §6.8.3 (MOV SS/POP SS), vol. 2 MOV DR, POPF.

%include "lib.inc"

DR6_FIXED   equ 0xFFFF0FF0      ; DR6 with no status bits (P6: bits 4-11, 16-31 read as 1)
DR6_BD      equ 1 << 13
DR6_BS      equ 1 << 14
DR6_BT      equ 1 << 15
DR7_FIXED   equ 0x400
DR7_GD      equ 1 << 13
; DR7 fields for breakpoint n: L, G, R/W (00 exec, 01 write, 10 I/O, 11 read/write), LEN
%define DR7_L(n)        (1 << ((n) * 2))
%define DR7_G(n)        (2 << ((n) * 2))
%define DR7_RW(n, rw)   ((rw) << (16 + (n) * 4))
%define DR7_LEN(n, len) ((len) << (18 + (n) * 4))
LEN1 equ 0
LEN2 equ 1
LEN4 equ 3

; #DB log written by h_db
DB_N        equ ROMVARS + 0x00  ; events so far
DB_SETRF    equ ROMVARS + 0x04  ; set RF in the frame from this event number on (1 = first)
DB_TFLIM    equ ROMVARS + 0x08  ; clear TF in the frame once DB_N reaches this
DB_TR       equ ROMVARS + 0x0C
COUNTER     equ ROMVARS + 0x10
SSVAL       equ ROMVARS + 0x14
DB_EIP      equ ROMVARS + 0x40  ; DB_EIP + i*8: pushed EIP of event i
DB_DR6      equ ROMVARS + 0x44  ; DB_DR6 + i*8: DR6 at event i
DATA        equ SCRATCH + 0x100 ; data-breakpoint target (16-byte aligned)

%macro DBRESET 2            ; RF threshold, TF limit
    mov dword [DB_N], 0
    mov dword [DB_SETRF], %1
    mov dword [DB_TFLIM], %2
    mov dword [COUNTER], 0
    xor eax, eax
    mov dr6, eax
%endmacro
%macro SETDR 2              ; DRn, value
    mov eax, %2
    mov %1, eax
%endmacro
%macro DR7OFF 0
    xor eax, eax
    mov dr7, eax
%endmacro
%macro TF_ON 0
    pushfd
    or dword [esp], EFL_TF
    popfd
%endmacro

main:
    mov eax, 1
    cpuid
    CHECKM "CPUID.1:EDX.DE (debugging extensions: CR4.DE, I/O breakpoints)", edx, 1 << 2, 1 << 2
    ; ================================================================ reserved bits, aliasing
    xor eax, eax
    mov dr6, eax
    mov eax, dr6
    CHECK "DR6 written 0 reads FFFF0FF0", eax, DR6_FIXED
    xor eax, eax
    mov dr7, eax
    mov eax, dr7
    CHECK "DR7 written 0 reads 00000400", eax, DR7_FIXED
    mov eax, 0x12345678
    mov dr0, eax
    mov eax, dr0
    CHECK "DR0 read back", eax, 0x12345678
    mov eax, 0x9ABCDEF0
    mov dr3, eax
    mov eax, dr3
    CHECK "DR3 read back", eax, 0x9ABCDEF0
    mov eax, DR6_FIXED | 1
    mov dr4, eax                    ; CR4.DE=0: DR4 is DR6
    mov eax, dr6
    CHECK "CR4.DE=0: MOV DR4 writes DR6", eax, DR6_FIXED | 1
    mov eax, DR7_FIXED | DR7_L(1) | DR7_RW(1, 1)
    mov dr7, eax
    mov eax, dr5                    ; DR5 is DR7
    CHECK "CR4.DE=0: MOV from DR5 reads DR7", eax, DR7_FIXED | DR7_L(1) | DR7_RW(1, 1)
    DR7OFF
    mov eax, cr4
    or eax, CR4_DE
    mov cr4, eax
    TRY
.u1: mov eax, dr4
    ENDTRY
    EXPECT_FAULT "CR4.DE=1: MOV from DR4: #UD", V_UD, ANYERR, .u1
    TRY
    mov dr5, eax
    ENDTRY
    EXPECT_FAULT "CR4.DE=1: MOV to DR5: #UD", V_UD
    mov eax, cr4
    and eax, ~CR4_DE
    mov cr4, eax
    TRY
    TO_RING3
    mov eax, dr7
    TO_RING0
    ENDTRY
    EXPECT_FAULT "MOV from DR7 at CPL3: #GP(0)", V_GP, 0
    TRY
    TO_RING3
    mov dr0, eax
    TO_RING0
    ENDTRY
    EXPECT_FAULT "MOV to DR0 at CPL3: #GP(0)", V_GP, 0

    ; ================================================================ DR7.GD
    TRY
    mov eax, DR7_FIXED | DR7_GD
    mov dr7, eax
.gd: mov eax, dr0
    ENDTRY
    EXPECT_FAULT "DR7.GD: MOV from DR0 raises #DB (fault)", V_DB, ANYERR, .gd
    CHECKM "DR7.GD: DR6.BD set", [rec_dr6], DR6_BD, DR6_BD
    mov eax, dr7
    CHECKM "DR7.GD cleared on entry to the #DB handler", eax, DR7_GD, 0
    xor eax, eax
    mov dr6, eax

    IDTGATE V_DB, SEL_CODE32, h_db, ACC_INTGATE32

    ; ================================================================ instruction breakpoints
    DBRESET 1, 0xFFFF
    SETDR dr0, .i1
    SETDR dr7, DR7_FIXED | DR7_L(0)
    nop
.i1: inc dword [COUNTER]
    DR7OFF
    CHECK "execute breakpoint DR0: one #DB", [DB_N], 1
    CHECK "execute breakpoint: fault, EIP = the instruction", [DB_EIP], .i1
    CHECKM "execute breakpoint: DR6.B0", [DB_DR6], 0xE00F, 1
    CHECK "IRET with RF=1: the instruction ran once", [COUNTER], 1
    DBRESET 2, 0xFFFF               ; first event: IRET without RF (re-triggers)
    SETDR dr3, .i2
    SETDR dr7, DR7_FIXED | DR7_G(3)
    nop
.i2: inc dword [COUNTER]
    DR7OFF
    CHECK "execute breakpoint DR3 (G3): IRET without RF re-triggers (2 events)", [DB_N], 2
    CHECK "second event at the same instruction", [DB_EIP + 8], .i2
    CHECKM "execute breakpoint: DR6.B3", [DB_DR6], 0xE008, 8
    CHECK "instruction ran once", [COUNTER], 1
    DBRESET 1, 0xFFFF
    SETDR dr1, .i3
    SETDR dr2, .i4
    SETDR dr7, DR7_FIXED | DR7_L(1) | DR7_L(2)
    nop
.i3: nop
.i4: nop
    DR7OFF
    CHECK "DR1 and DR2 execute breakpoints: two events", [DB_N], 2
    CHECK "DR1 event EIP", [DB_EIP], .i3
    CHECKM "DR1 event: DR6.B1", [DB_DR6], 0xE006, 2
    CHECK "DR2 event EIP", [DB_EIP + 8], .i4
    CHECKM "DR2 event: DR6.B2", [DB_DR6 + 8], 0xE006, 4
    DBRESET 1, 0xFFFF
    SETDR dr0, .i5
    SETDR dr7, DR7_FIXED            ; not enabled
    nop
.i5: nop
    CHECK "disabled breakpoint: no event", [DB_N], 0

    ; ================================================================ data breakpoints
%macro DATABP 6             ; name, DR address, R/W, LEN, {access}, expected events
    DBRESET 1, 0xFFFF
    mov dword [DATA], 0
    mov dword [DATA + 4], 0
    SETDR dr1, %2
    SETDR dr7, DR7_FIXED | DR7_L(1) | DR7_RW(1, %3) | DR7_LEN(1, %4)
    %5
%%after:
    DR7OFF
    CHECK %1, [DB_N], %6
  %if %6 == 1
    CHECK "  ... trap: EIP = next instruction", [DB_EIP], %%after
    CHECKM "  ... DR6.B1", [DB_DR6], 0xE002, 2
  %endif
%endmacro
    DATABP "write bp LEN4: byte write at +3 traps", DATA, 1, LEN4, {mov byte [DATA + 3], 0x5A}, 1
    movzx eax, byte [DATA + 3]
    CHECK "write bp: the write completed before the trap", eax, 0x5A
    DATABP "write bp LEN4: byte write at +4 does not", DATA, 1, LEN4, {mov byte [DATA + 4], 1}, 0
    DATABP "write bp LEN4: a read does not", DATA, 1, LEN4, {mov eax, [DATA]}, 0
    DATABP "write bp LEN4: dword write at -2 (overlap) traps", DATA, 1, LEN4, {mov dword [DATA - 2], 0}, 1
    DATABP "write bp LEN2 at +2: byte write at +3 traps", DATA + 2, 1, LEN2, {mov byte [DATA + 3], 1}, 1
    DATABP "write bp LEN2 at +2: byte write at +1 does not", DATA + 2, 1, LEN2, {mov byte [DATA + 1], 1}, 0
    DATABP "write bp LEN2 at +2: byte write at +4 does not", DATA + 2, 1, LEN2, {mov byte [DATA + 4], 1}, 0
    DATABP "write bp LEN1 at +1: word write at +0 traps", DATA + 1, 1, LEN1, {mov word [DATA], 1}, 1
    DATABP "write bp LEN1 at +1: byte write at +2 does not", DATA + 1, 1, LEN1, {mov byte [DATA + 2], 1}, 0
    DATABP "read/write bp LEN4: a read traps", DATA + 4, 3, LEN4, {mov eax, [DATA + 4]}, 1
    DATABP "read/write bp LEN4: a write traps", DATA + 4, 3, LEN4, {mov byte [DATA + 6], 1}, 1
    DATABP "read/write bp: PUSH to the watched stack slot traps", STACK0_TOP - 4, 3, LEN4, {push eax}, 1
    add esp, 4
    DATABP "read/write bp on code bytes: executing them does not trap", code_watch, 3, LEN1, {call code_watch}, 0

    ; ================================================================ I/O breakpoints
    mov eax, cr4
    or eax, CR4_DE
    mov cr4, eax
%macro IOBP 6               ; name, port in DR1, LEN, DX, {access}, expected events
    DBRESET 1, 0xFFFF
    SETDR dr1, %2
    SETDR dr7, DR7_FIXED | DR7_L(1) | DR7_RW(1, 2) | DR7_LEN(1, %3)
    mov dx, %4
    %5
%%after:
    DR7OFF
    CHECK %1, [DB_N], %6
  %if %6 == 1
    CHECK "  ... trap: EIP = next instruction", [DB_EIP], %%after
    CHECKM "  ... DR6.B1", [DB_DR6], 0xE002, 2
  %endif
%endmacro
    IOBP "I/O bp (CR4.DE=1): OUT DX to the port traps", 0x300, LEN1, 0x300, {out dx, al}, 1
    IOBP "I/O bp: IN from the port traps", 0x300, LEN1, 0x300, {in al, dx}, 1
    IOBP "I/O bp LEN4 at 0x300: word OUT at 0x302 traps", 0x300, LEN4, 0x302, {out dx, ax}, 1
    IOBP "I/O bp LEN4 at 0x300: OUT to 0x304 does not", 0x300, LEN4, 0x304, {out dx, al}, 0
    IOBP "I/O bp LEN1 at 0x300: OUT to 0x301 does not", 0x300, LEN1, 0x301, {out dx, al}, 0
    IOBP "I/O bp LEN1 at 0x301: word IN at 0x300 (covers 0x301) traps", 0x301, LEN1, 0x300, {in ax, dx}, 1
    IOBP "I/O bp: a memory access to the same address does not", 0x300, LEN1, 0x300, {mov eax, [0x300]}, 0
    mov eax, cr4
    and eax, ~CR4_DE
    mov cr4, eax

    ; ================================================================ single step
    DBRESET 0, 3
    TF_ON
.s1: nop
.s2: nop
.s3: nop
.s4: nop
    CHECK "single step: 3 traps", [DB_N], 3
    CHECK "single step: first trap after the instruction following POPF", [DB_EIP], .s2
    CHECK "single step: second trap", [DB_EIP + 8], .s3
    CHECK "single step: third trap", [DB_EIP + 16], .s4
    CHECKM "single step: DR6.BS", [DB_DR6], DR6_BS | 0xF, DR6_BS
    ; MOV SS shadow
    mov bx, ss
    DBRESET 0, 3
    TF_ON
.m1: nop
.m2: mov ss, bx
.m3: nop
.m4: nop
.m5:
    CHECK "MOV SS: 3 traps", [DB_N], 3
    CHECK "MOV SS: trap after the instruction before it", [DB_EIP], .m2
    CHECK "MOV SS: no trap after MOV SS; next trap after the following instruction", [DB_EIP + 8], .m4
    CHECK "MOV SS: then stepping resumes", [DB_EIP + 16], .m5
    ; POP SS shadow
    DBRESET 0, 2
    push ss
    TF_ON
.p1: pop ss
.p2: nop
.p3: nop
.p4:
    CHECK "POP SS: no trap after POP SS; first trap after the following instruction", [DB_EIP], .p3
    CHECK "POP SS: next trap", [DB_EIP + 8], .p4
    ; data breakpoint on MOV SS's operand: delayed over the next instruction
    mov ax, ss
    mov [SSVAL], ax
    DBRESET 1, 0xFFFF
    SETDR dr0, SSVAL
    SETDR dr7, DR7_FIXED | DR7_L(0) | DR7_RW(0, 3) | DR7_LEN(0, LEN2)
.d1: mov ss, [SSVAL]
.d2: nop
.d3: nop
    DR7OFF
    CHECK "data bp on MOV SS's operand: one event", [DB_N], 1
    CHECK "data bp on MOV SS: reported after the following instruction", [DB_EIP], .d3
    CHECKM "data bp on MOV SS: DR6.B0", [DB_DR6], 0xE00F, 1
    ; STI does not delay single step
    DBRESET 0, 2
    TF_ON
.t1: sti
.t2: nop
.t3:
    cli
    CHECK "STI: single-step trap right after STI", [DB_EIP], .t2
    CHECK "STI: next trap", [DB_EIP + 8], .t3

    ; single step and a data breakpoint on the same instruction: one #DB reporting both
    DBRESET 1, 2
    SETDR dr1, DATA
    SETDR dr7, DR7_FIXED | DR7_L(1) | DR7_RW(1, 1) | DR7_LEN(1, LEN4)
    TF_ON
    nop
.bs1: mov dword [DATA], 1
.bs2:
    DR7OFF
    CHECK "TF + data breakpoint: traps", [DB_N], 2
    CHECK "TF + data breakpoint: second trap after the write", [DB_EIP + 8], .bs2
    CHECKM "TF + data breakpoint: DR6.BS and DR6.B1 together", [DB_DR6 + 8], DR6_BS | 2, DR6_BS | 2

    ; ================================================================ TSS T bit
    TSS_T equ 0x30000
    S_TSST equ 0x80
    mov edi, TSS_T
    xor eax, eax
    mov ecx, 0x68 / 4
    rep stosd
    mov dword [TSS_T + 0x20], t_task
    mov dword [TSS_T + 0x24], 2
    mov dword [TSS_T + 0x38], 0x3F000
    mov dword [TSS_T + 0x48], SEL_DATA32
    mov dword [TSS_T + 0x4C], SEL_CODE32
    mov dword [TSS_T + 0x50], SEL_DATA32
    mov dword [TSS_T + 0x54], SEL_DATA32
    mov dword [TSS_T + 0x58], SEL_DATA32
    mov dword [TSS_T + 0x5C], SEL_DATA32
    mov dword [TSS_T + 0x60], SEL_LDT
    mov word [TSS_T + 0x64], 1      ; T
    mov word [TSS_T + 0x66], 0x68
    GDTDESC S_TSST, TSS_T, 0x67, ACC_TSS32, 0
    DBRESET 0, 0xFFFF
    jmp S_TSST:0
    call lib_flat_ds
    clts
    CHECK "TSS T bit: one #DB", [DB_N], 1
    CHECK "TSS T bit: trap before the new task's first instruction", [DB_EIP], t_task
    CHECKM "TSS T bit: DR6.BT", [DB_DR6], DR6_BT | DR6_BS, DR6_BT
    CHECK "TSS T bit: #DB taken in the new task", [DB_TR], S_TSST

    FINISH

t_task:
    jmp SEL_TSS0:0

code_watch:
    ret

; #DB handler: log pushed EIP and DR6, clear DR6, optionally set RF / clear TF in the frame
h_db:
    push eax
    push ebx
    mov ebx, [ss:DB_N]
    cmp ebx, 8
    jae .over
    mov eax, [ss:esp + 8]
    mov [ss:DB_EIP + ebx * 8], eax
    mov eax, dr6
    mov [ss:DB_DR6 + ebx * 8], eax
    str ax
    movzx eax, ax
    mov [ss:DB_TR], eax
    jmp .logged
.over:                              ; runaway: disarm everything
    xor eax, eax
    mov dr7, eax
    and dword [ss:esp + 16], ~EFL_TF
.logged:
    inc ebx
    mov [ss:DB_N], ebx
    xor eax, eax
    mov dr6, eax
    cmp dword [ss:DB_SETRF], 0
    je .norf
    cmp ebx, [ss:DB_SETRF]
    jb .norf
    or dword [ss:esp + 16], EFL_RF
.norf:
    cmp ebx, [ss:DB_TFLIM]
    jb .keep
    and dword [ss:esp + 16], ~EFL_TF
.keep:
    pop ebx
    pop eax
    iretd
