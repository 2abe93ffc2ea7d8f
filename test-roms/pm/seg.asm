; seg.asm — segmentation: descriptor loads and their exceptions/error codes, limit and type
; checks on data/stack/code accesses, expand-down segments, conforming code, LAR/LSL/VERR/
; VERW, ARPL, SGDT/SIDT/SLDT/STR, LLDT/LTR, accessed bits, unreal mode, LMSW/SMSW/CLTS,
; MOV CRn, INVD/WBINVD. References: Intel SDM vol. 3 ch. 3 and 5, vol. 2 instruction pages
; (MOV Sreg, POP Sreg, JMP far, LAR, LSL, VERR/VERW, ARPL, LTR, LLDT, LMSW, MOV CRn).

%include "lib.inc"

; ROM-owned GDT selectors
S_RW        equ 0x80        ; data RW DPL0 flat
S_XO        equ 0x88        ; code execute-only DPL0 flat 32-bit
S_RO        equ 0x90        ; data read-only DPL0 flat
S_RW3       equ 0x98        ; data RW DPL3 flat
S_NP        equ 0xA0        ; data RW DPL0, not present
S_SMALL     equ 0xA8        ; data RW DPL0, base SCRATCH, limit 0xFFF (bytes)
S_ED32      equ 0xB0        ; data RW expand-down, B=1, base SCRATCH, limit 0xFFF
S_ED16      equ 0xB8        ; data RW expand-down, B=0, base SCRATCH, limit 0xFFF
S_XR        equ 0xC0        ; code execute/read DPL0 flat 32-bit
S_CXR       equ 0xC8        ; conforming code execute/read DPL0 flat
S_CXO       equ 0xD0        ; conforming code execute-only DPL0 flat
S_NPXO      equ 0xD8        ; code execute-only, not present
S_TSS2      equ 0xE0        ; 32-bit TSS (available), base 0x30000
S_CODENP    equ 0xE8        ; code execute/read DPL0, not present
S_CXR3      equ 0xF0        ; conforming code execute/read DPL3
S_SMALL3    equ 0xF8        ; data RW DPL3, base SCRATCH, limit 0xFFF
S_SYS       equ 0x100       ; 0x100 + t*8: system descriptor of type t (t = 0..15), DPL0
S_RO3       equ 0x188       ; data read-only DPL3
S_LDTNP     equ 0x190       ; LDT descriptor, not present
S_TSSNP     equ 0x198       ; TSS descriptor, not present
S_EDG       equ 0x1A0       ; data RW expand-down, G=1, limit 0 (→ 0xFFF), B=1
S_LARD      equ 0x1A8       ; data for LAR/LSL value checks (DPL2, G, D, AVL)
S_ACC       equ 0x1B0       ; data RW, A=0 (accessed-bit check)
S_ACCC      equ 0x1B8       ; code XR, A=0
S_ACCSS     equ 0x1C0       ; data RW, A=0 (loaded into SS)
S_CACHE     equ 0x1C8       ; data RW, made not-present after loading (descriptor cache)
S_XRSMALL   equ 0x1D0       ; code XR 32-bit, base 0, limit 0xFFFFF bytes (1 MiB)
S_LARNA     equ 0x1D8       ; data RW A=0, only ever inspected with LAR/VERR
S_STK16     equ 0x1E0       ; data RW 16-bit (B=0), base SCRATCH, limit 0xFFFF
S_FETCH     equ 0x1E8       ; code XR 32-bit, base 0, limit = ABS(fetch_edge) + 1
S_LAST      equ 0x3F8       ; data RW at the very end of the GDT limit
S_BEYOND    equ 0x400       ; first selector beyond the GDT limit
; LDT selectors (TI=1)
L_RW        equ 0x04        ; LDT index 0: data RW DPL0, A=0
L_RW3       equ 0x0F        ; LDT index 1: data RW DPL3 (RPL 3)
L_ACC       equ 0x14        ; LDT index 2: data RW DPL0, A=0 (accessed-bit check)
L_ZERO      equ 0xFC        ; LDT index 0x1F: an all-zero descriptor (within the LDT limit)
L_BEYOND    equ 0x104       ; LDT index 0x20: beyond LDT limit 0xFF

main:
    ; ---------------------------------------------------------------- reset state
    CHECK "reset CR0 = 60000010", [reset_cr0], 0x60000010
    mov eax, 1
    cpuid
    CHECK "reset EDX = CPUID.1 signature", [reset_edx], eax
    mov eax, cr0
    CHECK "CR0 after entering PM = 60000011", eax, 0x60000011

    GDTDESC S_RW, 0, 0xFFFFF, ACC_DATA_RW, FL_G | FL_D
    GDTDESC S_XO, 0, 0xFFFFF, ACC_CODE_XO, FL_G | FL_D
    GDTDESC S_RO, 0, 0xFFFFF, ACC_DATA_RO, FL_G | FL_D
    GDTDESC S_RW3, 0, 0xFFFFF, ACC_DATA_RW | DPL(3), FL_G | FL_D
    GDTDESC S_NP, 0, 0xFFFFF, ACC_DATA_RW & ~ACC_P, FL_G | FL_D
    GDTDESC S_SMALL, SCRATCH, 0xFFF, ACC_DATA_RW, FL_D
    GDTDESC S_ED32, SCRATCH, 0xFFF, ACC_DATA_RW_ED, FL_D
    GDTDESC S_ED16, SCRATCH, 0xFFF, ACC_DATA_RW_ED, 0
    GDTDESC S_XR, 0, 0xFFFFF, ACC_CODE_XR, FL_G | FL_D
    GDTDESC S_CXR, 0, 0xFFFFF, ACC_CODE_C_XR, FL_G | FL_D
    GDTDESC S_CXO, 0, 0xFFFFF, ACC_CODE_C_XO, FL_G | FL_D
    GDTDESC S_NPXO, 0, 0xFFFFF, ACC_CODE_XO & ~ACC_P, FL_G | FL_D
    GDTDESC S_TSS2, 0x30000, 0x67, ACC_TSS32, 0
    GDTDESC S_CODENP, 0, 0xFFFFF, ACC_CODE_XR & ~ACC_P, FL_G | FL_D
    GDTDESC S_CXR3, 0, 0xFFFFF, ACC_CODE_C_XR | DPL(3), FL_G | FL_D
    GDTDESC S_SMALL3, SCRATCH, 0xFFF, ACC_DATA_RW | DPL(3), FL_D
    GDTDESC S_RO3, 0, 0xFFFFF, ACC_DATA_RO | DPL(3), FL_G | FL_D
    GDTDESC S_LDTNP, LDT_BASE, LDT_LIMIT, ACC_LDT & ~ACC_P, 0
    GDTDESC S_TSSNP, 0x30000, 0x67, ACC_TSS32 & ~ACC_P, 0
    GDTDESC S_EDG, SCRATCH, 0, ACC_DATA_RW_ED, FL_G | FL_D
    GDTDESC S_LARD, 0x12345678, 0xABCDE, ACC_DATA_RW | DPL(2) | 1, FL_G | FL_D | FL_AVL
    GDTDESC S_ACC, 0, 0xFFFFF, ACC_DATA_RW, FL_G | FL_D
    GDTDESC S_ACCC, 0, 0xFFFFF, ACC_CODE_XR, FL_G | FL_D
    GDTDESC S_ACCSS, 0, 0xFFFFF, ACC_DATA_RW, FL_G | FL_D
    GDTDESC S_CACHE, 0, 0xFFFFF, ACC_DATA_RW, FL_G | FL_D
    GDTDESC S_XRSMALL, 0, 0xFFFFF, ACC_CODE_XR, FL_D
    GDTDESC S_LARNA, 0, 0xFFFFF, ACC_DATA_RW, FL_G | FL_D
    GDTDESC S_LAST, 0, 0xFFFFF, ACC_DATA_RW, FL_G | FL_D
    GDTDESC S_STK16, SCRATCH, 0xFFFF, ACC_DATA_RW, 0
    GDTDESC S_FETCH, 0, ABS(fetch_edge) + 1, ACC_CODE_XR, FL_D
    ; system descriptors of every type: base 0x30000, limit 0x67, DPL0, present
%assign t 0
%rep 16
    GDTDESC S_SYS + t * 8, 0x30000, 0x67, 0x80 | t, 0
  %assign t t + 1
%endrep
    LDTDESC L_RW, 0, 0xFFFFF, ACC_DATA_RW, FL_G | FL_D
    LDTDESC L_RW3, 0, 0xFFFFF, ACC_DATA_RW | DPL(3), FL_G | FL_D
    LDTDESC L_ACC, 0, 0xFFFFF, ACC_DATA_RW, FL_G | FL_D
    mov dword [SCRATCH + 0x10], 0x11223344
    mov dword [SCRATCH + 0x1000], 0x55667788
    mov dword [SCRATCH + 0xFFFC], 0x99AABBCC

    ; ================================================================ null selectors
    TRY
    xor eax, eax
    mov ds, ax
    mov ax, 3
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ax, ds
    movzx eax, ax
    mov [ss:tmp0], eax
    ENDTRY
    EXPECT_NO_FAULT "null selector (RPL 0 and 3) into DS/ES/FS/GS at CPL0"
    CHECK "DS reads back 0 after a null load", [tmp0], 0

    TRY
    xor eax, eax
    mov ds, ax
.nd: mov eax, [0x1000]
    ENDTRY
    EXPECT_FAULT "read through null DS: #GP(0)", V_GP, 0, .nd
    TRY
    xor eax, eax
    mov es, ax
    mov edi, SCRATCH
.ne: stosb
    ENDTRY
    EXPECT_FAULT "STOSB through null ES: #GP(0)", V_GP, 0, .ne
    CHECK "EDI unchanged by the faulting STOSB", [rec_edi], SCRATCH
    TRY
    xor eax, eax
    mov gs, ax
.ng: mov [gs:SCRATCH], eax
    ENDTRY
    EXPECT_FAULT "write through null GS: #GP(0)", V_GP, 0, .ng
    TRY
    xor eax, eax
.ns: mov ss, ax
    ENDTRY
    EXPECT_FAULT "null selector into SS: #GP(0)", V_GP, 0, .ns
    TRY
    mov ax, 3
    mov ss, ax
    ENDTRY
    EXPECT_FAULT "null selector RPL3 into SS at CPL0: #GP(0)", V_GP, 0

    ; ================================================================ table limits
    TRY
    mov ax, S_BEYOND | 3
.lb: mov ds, ax
    ENDTRY
    EXPECT_FAULT "DS selector beyond GDT limit: #GP(sel, RPL dropped)", V_GP, S_BEYOND, .lb
    TRY
    mov ax, S_BEYOND
    mov ss, ax
    ENDTRY
    EXPECT_FAULT "SS selector beyond GDT limit: #GP(sel)", V_GP, S_BEYOND
    TRY
    mov ax, S_LAST
    mov ds, ax
    ENDTRY
    EXPECT_NO_FAULT "selector of the last descriptor inside the GDT limit"
    TRY
    mov ax, L_BEYOND
    mov fs, ax
    ENDTRY
    EXPECT_FAULT "FS selector beyond LDT limit: #GP(sel)", V_GP, L_BEYOND
    TRY
    mov ax, L_ZERO
    mov ds, ax
    ENDTRY
    EXPECT_FAULT "all-zero LDT descriptor (system type 0) into DS: #GP(sel)", V_GP, L_ZERO
    TRY
    mov ax, L_RW
    mov ds, ax
    mov eax, [SCRATCH + 0x10]
    mov [ss:tmp0], eax
    ENDTRY
    EXPECT_NO_FAULT "LDT index 0 is an ordinary descriptor (not null)"
    CHECK "read through the LDT data segment", [tmp0], 0x11223344

    ; ================================================================ descriptor types
    TRY
    mov ax, S_XO
.t1: mov ds, ax
    ENDTRY
    EXPECT_FAULT "execute-only code into DS: #GP(sel)", V_GP, S_XO, .t1
    TRY
    mov ax, S_XO
    mov gs, ax
    ENDTRY
    EXPECT_FAULT "execute-only code into GS: #GP(sel)", V_GP, S_XO
    TRY
    mov ax, SEL_TSS0
    mov es, ax
    ENDTRY
    EXPECT_FAULT "TSS descriptor into ES: #GP(sel)", V_GP, SEL_TSS0
    TRY
    mov ax, SEL_LDT
    mov ds, ax
    ENDTRY
    EXPECT_FAULT "LDT descriptor into DS: #GP(sel)", V_GP, SEL_LDT
    TRY
    mov ax, S_XR
    mov ds, ax
    mov eax, [SCRATCH + 0x10]
    mov [ss:tmp0], eax
    ENDTRY
    EXPECT_NO_FAULT "readable code into DS"
    CHECK "read through readable code in DS", [tmp0], 0x11223344
    TRY
    mov ax, S_XR
    mov ds, ax
.t2: mov [SCRATCH], eax
    ENDTRY
    EXPECT_FAULT "write through readable code in DS: #GP(0)", V_GP, 0, .t2
    TRY
    mov ax, S_RO
    mov ds, ax
    mov eax, [SCRATCH + 0x10]
    ENDTRY
    EXPECT_NO_FAULT "read-only data into DS and read"
    mov dword [SCRATCH + 0x20], 5
    TRY
    mov ax, S_RO
    mov ds, ax
.t3: add dword [SCRATCH + 0x20], 1
    ENDTRY
    EXPECT_FAULT "read-modify-write to read-only data: #GP(0)", V_GP, 0, .t3
    CHECK "read-only data unchanged", [SCRATCH + 0x20], 5
    TRY
    mov ax, S_RO
    mov ss, ax
    ENDTRY
    EXPECT_FAULT "read-only data into SS: #GP(sel)", V_GP, S_RO
    TRY
    mov ax, S_XR
    mov ss, ax
    ENDTRY
    EXPECT_FAULT "readable code into SS: #GP(sel)", V_GP, S_XR
    TRY
    mov ax, S_RW
    mov ss, ax
    mov ax, SEL_DATA32
    mov ss, ax
    ENDTRY
    EXPECT_NO_FAULT "writable data into SS"
    TRY
.t4: mov [cs:SCRATCH], eax
    ENDTRY
    EXPECT_FAULT "write through CS override: #GP(0)", V_GP, 0, .t4
    TRY
    mov eax, [cs:SCRATCH + 0x10]
    mov [tmp0], eax
    ENDTRY
    EXPECT_NO_FAULT "read through CS override of readable code"
    CHECK "value read through CS", [tmp0], 0x11223344
    TRY
    jmp S_XO:.xo
.xo:
    mov ax, cs
    movzx eax, ax
    mov [tmp0], eax
.t5: mov eax, [cs:SCRATCH + 0x10]
    jmp SEL_CODE32:.xoback
.xoback:
    ENDTRY
    EXPECT_FAULT "read through CS override of execute-only code: #GP(0)", V_GP, 0, .t5
    CHECKM "pushed CS is the execute-only selector", [rec_cs], 0xFFFF, S_XO
    CHECK "CS after far JMP to execute-only code", [tmp0], S_XO

    ; ================================================================ privilege (CPL 0)
    TRY
    mov ax, S_RW | 3
    mov ds, ax
    ENDTRY
    EXPECT_FAULT "DPL0 data, RPL3, into DS at CPL0: #GP(sel)", V_GP, S_RW
    TRY
    mov ax, S_RW3 | 3
    mov ds, ax
    ENDTRY
    EXPECT_NO_FAULT "DPL3 data, RPL3, into DS at CPL0"
    TRY
    mov ax, S_CXR | 3
    mov ds, ax
    ENDTRY
    EXPECT_NO_FAULT "conforming readable code DPL0, RPL3, into DS (no privilege check)"
    TRY
    mov ax, S_XR | 3
    mov ds, ax
    ENDTRY
    EXPECT_FAULT "nonconforming readable code DPL0, RPL3, into DS: #GP(sel)", V_GP, S_XR
    TRY
    mov ax, S_RW | 3
    mov ss, ax
    ENDTRY
    EXPECT_FAULT "SS with RPL != CPL: #GP(sel)", V_GP, S_RW
    TRY
    mov ax, S_RW3
    mov ss, ax
    ENDTRY
    EXPECT_FAULT "SS with DPL != CPL: #GP(sel)", V_GP, S_RW3

    ; ================================================================ privilege (CPL 3)
    TRY
    TO_RING3
    mov ax, SEL_DATA32 | 3
.p1: mov ds, ax
    TO_RING0
    ENDTRY
    EXPECT_FAULT "CPL3: DPL0 data (RPL3) into DS: #GP(sel)", V_GP, SEL_DATA32, .p1
    CHECKM "CPL3 fault: pushed CS", [rec_cs], 0xFFFF, SEL_CODE32_R3
    CHECKM "CPL3 fault: pushed SS", [rec_ss], 0xFFFF, SEL_DATA32_R3
    CHECK "CPL3 fault: pushed ESP", [rec_esp], STACK3_TOP
    CHECK "CPL3 fault: handler ESP from TSS.ESP0", [rec_hesp], STACK0_TOP - 20
    TRY
    TO_RING3
    mov ax, SEL_DATA32
    mov es, ax
    TO_RING0
    ENDTRY
    EXPECT_FAULT "CPL3: DPL0 data (RPL0) into ES: #GP(sel)", V_GP, SEL_DATA32
    TRY
    TO_RING3
    mov ax, S_RW3 | 3
    mov ds, ax
    xor eax, eax
    mov fs, ax
    mov ax, S_CXR | 3
    mov gs, ax
    TO_RING0
    ENDTRY
    EXPECT_NO_FAULT "CPL3: DPL3 data, null, conforming readable code into DS/FS/GS"
    TRY
    TO_RING3
    mov ax, S_XR | 3
    mov ds, ax
    TO_RING0
    ENDTRY
    EXPECT_FAULT "CPL3: nonconforming DPL0 code into DS: #GP(sel)", V_GP, S_XR
    TRY
    TO_RING3
    mov ax, SEL_DATA32 | 3
    mov ss, ax
    TO_RING0
    ENDTRY
    EXPECT_FAULT "CPL3: DPL0 data into SS: #GP(sel)", V_GP, SEL_DATA32
    TRY
    TO_RING3
    mov ax, S_RW3
    mov ss, ax
    TO_RING0
    ENDTRY
    EXPECT_FAULT "CPL3: DPL3 data with RPL0 into SS: #GP(sel)", V_GP, S_RW3
    TRY
    TO_RING3
    mov ax, S_RO3 | 3
    mov ss, ax
    TO_RING0
    ENDTRY
    EXPECT_FAULT "CPL3: read-only DPL3 data into SS: #GP(sel)", V_GP, S_RO3
    TRY
    TO_RING3
    mov ax, 3
    mov ss, ax
    TO_RING0
    ENDTRY
    EXPECT_FAULT "CPL3: null selector into SS: #GP(0)", V_GP, 0
    TRY
    TO_RING3
    mov ax, L_RW3
    mov ss, ax
    mov ax, SEL_DATA32_R3
    mov ss, ax
    TO_RING0
    ENDTRY
    EXPECT_NO_FAULT "CPL3: DPL3 LDT data into SS"

    ; ================================================================ not present
    TRY
    mov ax, S_NP
.n1: mov ds, ax
    ENDTRY
    EXPECT_FAULT "not-present data into DS: #NP(sel)", V_NP, S_NP, .n1
    TRY
    mov ax, S_NP
    mov gs, ax
    ENDTRY
    EXPECT_FAULT "not-present data into GS: #NP(sel)", V_NP, S_NP
    TRY
    mov ax, S_NP
.n2: mov ss, ax
    ENDTRY
    EXPECT_FAULT "not-present data into SS: #SS(sel)", V_SS, S_NP, .n2
    TRY
    mov ax, S_NPXO
    mov ds, ax
    ENDTRY
    EXPECT_FAULT "not-present execute-only code into DS: #GP(sel) (type before present)", V_GP, S_NPXO
    TRY
    mov ax, S_NP | 3
    mov ds, ax
    ENDTRY
    EXPECT_FAULT "not-present DPL0 data with RPL3: #GP(sel) (privilege before present)", V_GP, S_NP
    TRY
    push dword S_NP
.n3: pop ds
    ENDTRY
    EXPECT_FAULT "POP DS of a not-present segment: #NP(sel)", V_NP, S_NP, .n3
    CHECK "POP DS fault leaves ESP unchanged", [rec_esp], STACK0_TOP - 4
    movzx eax, byte [GDT_BASE + S_NP + 5]
    CHECK "failed loads do not set the accessed bit", eax, ACC_DATA_RW & ~ACC_P

    ; ================================================================ limits
    TRY
    mov ax, S_SMALL
    mov ds, ax
    mov eax, [0x10]
    mov [ss:tmp0], eax
    mov eax, [0xFFC]
    mov al, [0xFFF]
    ENDTRY
    EXPECT_NO_FAULT "data accesses inside a 0xFFF limit"
    CHECK "segment base applied (base SCRATCH)", [tmp0], 0x11223344
    TRY
    mov ax, S_SMALL
    mov ds, ax
.l1: mov eax, [0xFFD]
    ENDTRY
    EXPECT_FAULT "dword read ending past the limit: #GP(0)", V_GP, 0, .l1
    TRY
    mov ax, S_SMALL
    mov ds, ax
    mov ax, [0xFFF]
    ENDTRY
    EXPECT_FAULT "word read at the limit byte: #GP(0)", V_GP, 0
    TRY
    mov ax, S_SMALL
    mov es, ax
    mov edi, 0x1000
    stosb
    ENDTRY
    EXPECT_FAULT "STOSB at limit+1 through ES: #GP(0)", V_GP, 0
    TRY
    mov ax, S_SMALL
    mov ss, ax
    mov esp, 0x800
    mov ebp, 0xFFE
.l2: mov eax, [ebp]
    mov ax, SEL_DATA32
    mov ss, ax
    mov esp, STACK0_TOP
    ENDTRY
    EXPECT_FAULT "SS-relative ([EBP]) read past the SS limit: #SS(0)", V_SS, 0, .l2
    CHECK "#SS(0) frame on the faulting stack (ESP)", [rec_esp], 0x800
    TRY
    mov ax, S_SMALL
    mov ss, ax
    mov esp, 0x800
    mov esi, 0x1000
    mov eax, [ss:esi]
    mov ax, SEL_DATA32
    mov ss, ax
    mov esp, STACK0_TOP
    ENDTRY
    EXPECT_FAULT "SS-override read past the SS limit: #SS(0)", V_SS, 0
    TRY
    mov ax, S_SMALL
    mov ds, ax
    mov ebp, 0x1000
    mov eax, [ds:ebp]
    ENDTRY
    EXPECT_FAULT "DS-override of [EBP] past the DS limit: #GP(0)", V_GP, 0
    TRY
    TO_RING3
    mov ax, S_SMALL3 | 3
    mov ss, ax
    mov esp, 0x1002
.l3: push eax
    TO_RING0
    ENDTRY
    EXPECT_FAULT "CPL3 PUSH past the SS limit: #SS(0)", V_SS, 0, .l3
    CHECK "CPL3 #SS: pushed ESP is the original", [rec_esp], 0x1002
    CHECKM "CPL3 #SS: pushed SS", [rec_ss], 0xFFFF, S_SMALL3 | 3
    TRY
    TO_RING3
    mov ax, S_SMALL3 | 3
    mov ss, ax
    mov esp, 0x1000
    push eax
    mov ax, SEL_DATA32_R3
    mov ss, ax
    mov esp, STACK3_TOP
    TO_RING0
    ENDTRY
    EXPECT_NO_FAULT "CPL3 PUSH ending exactly at the SS limit"
    TRY
    jmp S_XRSMALL:.c1
.c1:
    mov eax, [cs:0xFFFFC]
.c2: mov eax, [cs:0xFFFFD]
    jmp SEL_CODE32:.c3
.c3:
    ENDTRY
    EXPECT_FAULT "CS-override read past a 1 MiB code limit: #GP(0)", V_GP, 0, .c2
    TRY
.c4: jmp S_XRSMALL:0x100000
    ENDTRY
    EXPECT_FAULT "far JMP to an offset beyond the CS limit: #GP(0)", V_GP, 0, .c4
    CHECKM "far JMP beyond limit: CS unchanged", [rec_cs], 0xFFFF, SEL_CODE32

    ; ================================================================ expand-down
    TRY
    mov ax, S_ED32
    mov ds, ax
    mov eax, [0x1000]
    mov [ss:tmp0], eax
    mov eax, [0xFFFFF000]
    ENDTRY
    EXPECT_NO_FAULT "expand-down B=1: offsets limit+1 .. 0xFFFFFFFF are valid"
    CHECK "expand-down read uses the base", [tmp0], 0x55667788
    TRY
    mov ax, S_ED32
    mov ds, ax
.e1: mov al, [0xFFF]
    ENDTRY
    EXPECT_FAULT "expand-down B=1: offset = limit: #GP(0)", V_GP, 0, .e1
    TRY
    mov ax, S_ED32
    mov ds, ax
    mov eax, [0xFFE]
    ENDTRY
    EXPECT_FAULT "expand-down B=1: dword straddling limit+1: #GP(0)", V_GP, 0
    TRY
    mov ax, S_ED32
    mov ds, ax
    mov eax, [0]
    ENDTRY
    EXPECT_FAULT "expand-down B=1: offset 0: #GP(0)", V_GP, 0
    TRY
    mov ax, S_ED16
    mov ds, ax
    mov eax, [0x1000]
    mov eax, [0xFFFC]
    mov [ss:tmp0], eax
    ENDTRY
    EXPECT_NO_FAULT "expand-down B=0: offsets limit+1 .. 0xFFFF are valid"
    CHECK "expand-down B=0: read at 0xFFFC", [tmp0], 0x99AABBCC
    TRY
    mov ax, S_ED16
    mov ds, ax
.e2: mov eax, [0xFFFD]
    ENDTRY
    EXPECT_FAULT "expand-down B=0: dword ending past 0xFFFF: #GP(0)", V_GP, 0, .e2
    TRY
    mov ax, S_ED16
    mov ds, ax
    mov al, [0x10000]
    ENDTRY
    EXPECT_FAULT "expand-down B=0: offset 0x10000: #GP(0)", V_GP, 0
    TRY
    mov ax, S_ED16
    mov ds, ax
    mov al, [0xFFF]
    ENDTRY
    EXPECT_FAULT "expand-down B=0: offset = limit: #GP(0)", V_GP, 0
    TRY
    mov ax, S_EDG
    mov ds, ax
    mov al, [0x1000]
.e3: mov al, [0xFFF]
    ENDTRY
    EXPECT_FAULT "expand-down G=1 limit 0 (0xFFF): offset 0xFFF: #GP(0)", V_GP, 0, .e3
    TRY
    mov ax, S_ED32
    mov ss, ax
    mov esp, 0x2000
    push dword 0xCAFEF00D
    mov ebx, [SCRATCH + 0x1FFC]
    mov [tmp0], ebx
    mov ebp, 0xFF0
.e4: mov eax, [ebp]
    mov ax, SEL_DATA32
    mov ss, ax
    mov esp, STACK0_TOP
    ENDTRY
    EXPECT_FAULT "expand-down SS: [EBP] below limit+1: #SS(0)", V_SS, 0, .e4
    CHECK "expand-down SS: push wrote at base+ESP-4", [tmp0], 0xCAFEF00D

    ; 16-bit stack segment (B=0): PUSH uses and updates SP only
    TRY
    mov ax, S_STK16
    mov ss, ax
    mov esp, 0xABCD0010
    push dword 0x13572468
    mov [tmp0], esp
    mov ax, SEL_DATA32
    mov ss, ax
    mov esp, STACK0_TOP
    ENDTRY
    EXPECT_NO_FAULT "PUSH on a 16-bit (B=0) stack segment"
    CHECK "B=0 stack: only SP changes", [tmp0], 0xABCD000C
    CHECK "B=0 stack: written at base+SP", [SCRATCH + 0xC], 0x13572468

    ; ================================================================ segment cache
    TRY
    mov ax, S_CACHE
    mov fs, ax
    and byte [GDT_BASE + S_CACHE + 5], 0x7F
    mov eax, [fs:SCRATCH + 0x10]
    mov [tmp0], eax
    ENDTRY
    EXPECT_NO_FAULT "access uses the cached descriptor, not the GDT entry"
    CHECK "value through the cached FS", [tmp0], 0x11223344
    TRY
    mov ax, S_CACHE
    mov fs, ax
    ENDTRY
    EXPECT_FAULT "reload after the GDT entry became not-present: #NP(sel)", V_NP, S_CACHE

    ; ================================================================ far JMP: code checks
    TRY
    TO_RING3
    jmp S_CXR:.cf1
.cf1:
    mov ax, cs
    movzx eax, ax
    mov [tmp0], eax
    jmp SEL_CODE32_R3:.cf2
.cf2:
    TO_RING0
    ENDTRY
    EXPECT_NO_FAULT "CPL3 far JMP to conforming DPL0 code"
    CHECK "conforming code: CS.RPL = CPL (3)", [tmp0], S_CXR | 3
    TRY
    TO_RING3
.cf3: jmp SEL_CODE32:.cf4
.cf4:
    TO_RING0
    ENDTRY
    EXPECT_FAULT "CPL3 far JMP to nonconforming DPL0 code: #GP(sel)", V_GP, SEL_CODE32, .cf3
    TRY
    jmp S_CXR3:.cf5
.cf5:
    jmp SEL_CODE32:.cf6
.cf6:
    ENDTRY
    EXPECT_FAULT "CPL0 far JMP to conforming DPL3 code: #GP(sel)", V_GP, S_CXR3
    TRY
    jmp 0x0B:.cf7
.cf7:
    ENDTRY
    EXPECT_FAULT "far JMP to nonconforming code with RPL > CPL: #GP(sel)", V_GP, SEL_CODE32
    TRY
    jmp S_CXO:.cf8
.cf8:
    mov ax, cs
    movzx eax, ax
    mov [tmp0], eax
    jmp SEL_CODE32:.cf9
.cf9:
    ENDTRY
    EXPECT_NO_FAULT "far JMP to conforming execute-only DPL0 code"
    CHECK "CS after JMP to conforming code", [tmp0], S_CXO
    TRY
    jmp SEL_DATA32:.cf10
.cf10:
    ENDTRY
    EXPECT_FAULT "far JMP to a data segment: #GP(sel)", V_GP, SEL_DATA32
    TRY
    jmp S_CODENP:.cf11
.cf11:
    ENDTRY
    EXPECT_FAULT "far JMP to not-present code: #NP(sel)", V_NP, S_CODENP
    TRY
    jmp 0:.cf12
.cf12:
    ENDTRY
    EXPECT_FAULT "far JMP to the null selector: #GP(0)", V_GP, 0

    ; instruction fetch past the CS limit
    TRY
    jmp S_FETCH:fetch_ok
fetch_back:
    ENDTRY
    EXPECT_FAULT "instruction crossing the CS limit: #GP(0) at its first byte", V_GP, 0, fetch_edge
    CHECKM "fetch fault: pushed CS", [rec_cs], 0xFFFF, S_FETCH
    TRY
    jmp S_FETCH:fetch_jmp
    ENDTRY
    EXPECT_FAULT "near JMP to beyond the CS limit: #GP(0) at the JMP", V_GP, 0, fetch_jmp
    ; far CALL to conforming code from ring 3 and RETF back
    TRY
    TO_RING3
    call S_CXR:conf_target
    mov [tmp1], esp
    TO_RING0
    ENDTRY
    EXPECT_NO_FAULT "CPL3 far CALL to conforming DPL0 code and RETF"
    CHECK "conforming CALL: CS = S_CXR | 3 (CPL stays 3)", [tmp0], S_CXR | 3
    CHECK "conforming CALL: no stack switch (ring-3 ESP - 8)", [tmp2], STACK3_TOP - 8
    CHECK "conforming RETF: ESP restored", [tmp1], STACK3_TOP

    ; ================================================================ LAR / LSL / VERR / VERW
    ; system types: which ones LAR and LSL accept (bitmask over types 0..15)
    xor edi, edi
    xor esi, esi
    xor ecx, ecx
.sysl:
    lea edx, [S_SYS + ecx * 8]
    lar eax, dx
    jnz .sys1
    bts edi, ecx
.sys1:
    lsl eax, dx
    jnz .sys2
    bts esi, ecx
.sys2:
    inc ecx
    cmp ecx, 16
    jb .sysl
    CHECK "LAR accepts system types 1,2,3,4,5,9,B,C", edi, 0x1A3E
    CHECK "LSL accepts system types 1,2,3,9,B", esi, 0x0A0E
    mov dx, S_LARD
    mov eax, 0xDEADBEEF
    lar eax, dx
    GET_ZF ebx
    CHECK "LAR of data DPL2: ZF=1", ebx, 1
    CHECKM "LAR r32 value (masked 00F0FF00)", eax, 0x00F0FF00, 0x00D0D300
    mov eax, 0xDEADBEEF
    lar ax, dx
    CHECK "LAR r16 value (upper EAX kept)", eax, 0xDEADD300
    lsl eax, dx
    GET_ZF ebx
    CHECK "LSL of data: ZF=1", ebx, 1
    CHECK "LSL with G=1: (limit << 12) | FFF", eax, 0xABCDEFFF
    mov dx, S_SMALL
    lsl eax, dx
    CHECK "LSL with G=0: byte limit", eax, 0xFFF
    mov dx, S_ED32
    lsl eax, dx
    CHECK "LSL of expand-down: raw limit", eax, 0xFFF
    mov dx, S_SYS + 9 * 8
    lar eax, dx
    CHECKM "LAR of an available 32-bit TSS", eax, 0x00F0FF00, 0x00008900
    lsl eax, dx
    CHECK "LSL of a TSS", eax, 0x67
    mov dx, S_NP
    mov eax, 0xDEADBEEF
    lar eax, dx
    GET_ZF ebx
    CHECK "LAR of a not-present segment: ZF=1", ebx, 1
    CHECKM "LAR of a not-present segment: P=0 in the result", eax, 0xFF00, 0x1200
    mov eax, 0xDEADBEEF
    xor edx, edx
    lar eax, dx
    GET_ZF ebx
    CHECK "LAR of the null selector: ZF=0", ebx, 0
    CHECK "LAR with ZF=0 leaves the destination", eax, 0xDEADBEEF
    mov dx, S_BEYOND
    lsl eax, dx
    GET_ZF ebx
    CHECK "LSL beyond the GDT limit: ZF=0, no fault", ebx, 0
    CHECK "LSL with ZF=0 leaves the destination", eax, 0xDEADBEEF
    mov dx, S_RW | 3
    lar eax, dx
    GET_ZF ebx
    CHECK "LAR of DPL0 data with RPL3 at CPL0: ZF=0", ebx, 0
    mov dx, S_CXR | 3
    lar eax, dx
    GET_ZF ebx
    CHECK "LAR of conforming code with RPL3: ZF=1", ebx, 1
    mov dx, S_LARNA
    lar eax, dx
    verr dx
    movzx eax, byte [GDT_BASE + S_LARNA + 5]
    CHECK "LAR/VERR do not set the accessed bit", eax, ACC_DATA_RW
    ; VERR / VERW at CPL 0
    xor edi, edi
%macro VBIT 3          ; {instruction on DX}, selector, bit
    mov dx, %2
    %1
    jnz %%n
    bts edi, %3
%%n:
%endmacro
    VBIT {verr dx}, S_RW, 0
    VBIT {verr dx}, S_RO, 1
    VBIT {verr dx}, S_XO, 2
    VBIT {verr dx}, S_XR, 3
    VBIT {verr dx}, S_CXO, 4
    VBIT {verr dx}, S_CXR, 5
    VBIT {verr dx}, SEL_TSS0, 6
    VBIT {verr dx}, 0, 7
    VBIT {verw dx}, S_RW, 8
    VBIT {verw dx}, S_RO, 9
    VBIT {verw dx}, S_XR, 10
    VBIT {verw dx}, S_CXR, 11
    VBIT {verw dx}, S_ED32, 12
    VBIT {verw dx}, SEL_LDT, 13
    VBIT {verw dx}, S_RW | 3, 14
    VBIT {verr dx}, S_BEYOND, 15
    CHECK "VERR/VERW ZF per type (bit set = ZF=1)", edi, 0x112B
    ; at CPL 3
    TRY
    TO_RING3
    xor edi, edi
    VBIT {lar eax, dx}, SEL_DATA32 | 3, 0
    VBIT {lar eax, dx}, S_RW3 | 3, 1
    VBIT {lar eax, dx}, S_CXR | 3, 2
    VBIT {lar eax, dx}, S_XR | 3, 3
    VBIT {verr dx}, SEL_DATA32 | 3, 4
    VBIT {verr dx}, S_CXR | 3, 5
    VBIT {verr dx}, S_CXO | 3, 6
    VBIT {verw dx}, S_RW3 | 3, 7
    VBIT {verw dx}, SEL_DATA32 | 3, 8
    VBIT {lsl eax, dx}, S_SYS + 9 * 8, 9
    VBIT {lsl eax, dx}, S_RW3, 10
    mov [tmp0], edi
    TO_RING0
    ENDTRY
    EXPECT_NO_FAULT "LAR/LSL/VERR/VERW at CPL3 do not fault"
    CHECK "CPL3 LAR/LSL/VERR/VERW ZF (DPL rules, conforming exempt)", [tmp0], 0x4A6
%unmacro VBIT 3

    ; ================================================================ ARPL
    mov ax, 0x0011
    mov bx, 0x0003
    arpl ax, bx
    GET_ZF ecx
    movzx eax, ax
    CHECK "ARPL raises RPL 1 -> 3: value", eax, 0x13
    CHECK "ARPL raises RPL: ZF=1", ecx, 1
    mov ax, 0x0013
    mov bx, 0x0001
    arpl ax, bx
    GET_ZF ecx
    movzx eax, ax
    CHECK "ARPL keeps a higher RPL: value", eax, 0x13
    CHECK "ARPL keeps a higher RPL: ZF=0", ecx, 0
    mov dword [tmp0], 0xFFFF0010
    mov bx, 0x0002
    arpl [tmp0], bx
    CHECK "ARPL on memory (word only)", [tmp0], 0xFFFF0012

    ; ================================================================ SGDT / SIDT / SLDT / STR
    mov dword [tmp0], 0xFFFFFFFF
    mov dword [tmp1], 0xFFFFFFFF
    sgdt [tmp0]
    movzx eax, word [tmp0]
    CHECK "SGDT limit", eax, GDT_LIMIT
    mov eax, [tmp0 + 2]
    CHECK "SGDT base", eax, GDT_BASE
    sidt [tmp0]
    movzx eax, word [tmp0]
    CHECK "SIDT limit", eax, IDT_LIMIT
    mov eax, [tmp0 + 2]
    CHECK "SIDT base", eax, IDT_BASE
    mov eax, 0xFFFFFFFF
    sldt eax
    CHECK "SLDT r32 (upper half cleared on P6)", eax, SEL_LDT
    mov eax, 0xFFFFFFFF
    str eax
    CHECK "STR r32 (upper half cleared on P6)", eax, SEL_TSS0
    mov dword [tmp0], 0xFFFFFFFF
    sldt [tmp0]
    CHECK "SLDT m16 writes a word", [tmp0], 0xFFFF0000 | SEL_LDT
    TRY
    TO_RING3
    sgdt [tmp0]
    str ax
    movzx eax, ax
    mov [tmp2], eax
    TO_RING0
    ENDTRY
    EXPECT_NO_FAULT "SGDT/STR at CPL3 are not privileged"
    mov eax, [tmp0 + 2]
    CHECK "SGDT at CPL3: base", eax, GDT_BASE
    CHECK "STR at CPL3", [tmp2], SEL_TSS0

    ; ================================================================ LTR / LLDT
    TRY
    TO_RING3
    mov ax, S_TSS2
    ltr ax
    TO_RING0
    ENDTRY
    EXPECT_FAULT "LTR at CPL3: #GP(0)", V_GP, 0
    TRY
    mov ax, S_TSS2
    ltr ax
    ENDTRY
    EXPECT_NO_FAULT "LTR of an available TSS"
    movzx eax, byte [GDT_BASE + S_TSS2 + 5]
    CHECK "LTR sets the busy bit in the descriptor", eax, ACC_TSS32_BUSY
    str ax
    movzx eax, ax
    CHECK "STR after LTR", eax, S_TSS2
    TRY
    mov ax, S_TSS2
    ltr ax
    ENDTRY
    EXPECT_FAULT "LTR of a busy TSS: #GP(sel)", V_GP, S_TSS2
    TRY
    mov ax, S_RW
    ltr ax
    ENDTRY
    EXPECT_FAULT "LTR of a data segment: #GP(sel)", V_GP, S_RW
    TRY
    mov ax, S_SYS + 1 * 8 + 3
    ltr ax
    ENDTRY
    EXPECT_NO_FAULT "LTR of an available 16-bit TSS (RPL ignored)"
    TRY
    xor eax, eax
    ltr ax
    ENDTRY
    EXPECT_FAULT "LTR of the null selector: #GP(0)", V_GP, 0
    TRY
    mov ax, S_TSSNP
    ltr ax
    ENDTRY
    EXPECT_FAULT "LTR of a not-present TSS: #NP(sel)", V_NP, S_TSSNP
    TRY
    mov ax, L_RW
    ltr ax
    ENDTRY
    EXPECT_FAULT "LTR with TI=1: #GP(sel)", V_GP, L_RW
    ; back to TSS0
    mov byte [GDT_BASE + SEL_TSS0 + 5], ACC_TSS32
    mov ax, SEL_TSS0
    ltr ax
    TRY
    mov ax, S_RW
    lldt ax
    ENDTRY
    EXPECT_FAULT "LLDT of a data segment: #GP(sel)", V_GP, S_RW
    TRY
    mov ax, S_LDTNP
    lldt ax
    ENDTRY
    EXPECT_FAULT "LLDT of a not-present LDT: #NP(sel)", V_NP, S_LDTNP
    TRY
    mov ax, SEL_LDT | 4
    lldt ax
    ENDTRY
    EXPECT_FAULT "LLDT with TI=1: #GP(sel)", V_GP, SEL_LDT | 4
    TRY
    TO_RING3
    mov ax, SEL_LDT
    lldt ax
    TO_RING0
    ENDTRY
    EXPECT_FAULT "LLDT at CPL3: #GP(0)", V_GP, 0
    TRY
    xor eax, eax
    lldt ax
    ENDTRY
    EXPECT_NO_FAULT "LLDT of the null selector"
    mov eax, 0xFFFF
    sldt eax
    CHECK "SLDT after LLDT null", eax, 0
    TRY
    mov ax, L_RW
    mov ds, ax
    ENDTRY
    EXPECT_FAULT "LDT selector with a null LDTR: #GP(sel)", V_GP, L_RW
    mov ax, SEL_LDT
    lldt ax

    ; ================================================================ accessed bits
    mov ax, S_ACC
    mov ds, ax
    mov ax, SEL_DATA32
    mov ds, ax
    movzx eax, byte [GDT_BASE + S_ACC + 5]
    CHECK "loading DS sets the accessed bit", eax, ACC_DATA_RW | 1
    mov ax, S_ACCSS
    mov ss, ax
    mov ax, SEL_DATA32
    mov ss, ax
    movzx eax, byte [GDT_BASE + S_ACCSS + 5]
    CHECK "loading SS sets the accessed bit", eax, ACC_DATA_RW | 1
    mov ax, L_ACC
    mov es, ax
    movzx eax, byte [LDT_BASE + (L_ACC & ~7) + 5]
    CHECK "loading ES from the LDT sets the accessed bit", eax, ACC_DATA_RW | 1
    jmp S_ACCC:.ac1
.ac1:
    jmp SEL_CODE32:.ac2
.ac2:
    movzx eax, byte [GDT_BASE + S_ACCC + 5]
    CHECK "far JMP sets the code accessed bit", eax, ACC_CODE_XR | 1
    call lib_flat_ds

    ; ================================================================ control registers
    smsw eax
    mov ebx, cr0
    and eax, 0xFFFF
    and ebx, 0xFFFF
    CHECK "SMSW r32 = CR0[15:0]", eax, ebx
    mov ax, CR0_PE | CR0_MP | CR0_TS
    lmsw ax
    mov eax, cr0
    CHECK "LMSW sets MP, TS", eax, 0x60000000 | CR0_ET | CR0_PE | CR0_MP | CR0_TS
    clts
    mov eax, cr0
    CHECK "CLTS clears TS", eax, 0x60000000 | CR0_ET | CR0_PE | CR0_MP
    xor eax, eax
    lmsw ax
    mov eax, cr0
    CHECK "LMSW cannot clear PE (and leaves ET)", eax, 0x60000000 | CR0_ET | CR0_PE
    mov word [tmp0], 0xFFFF
    smsw [tmp0]
    movzx eax, word [tmp0]
    CHECK "SMSW m16", eax, CR0_ET | CR0_PE
    mov eax, cr0
    and eax, ~CR0_ET
    mov cr0, eax
    mov eax, cr0
    CHECK "CR0.ET is hardwired to 1", eax, 0x60000000 | CR0_ET | CR0_PE
    TRY
    mov eax, cr0
    and eax, ~CR0_PE
    or eax, CR0_PG
    mov cr0, eax
    ENDTRY
    EXPECT_FAULT "MOV CR0 with PG=1, PE=0: #GP(0)", V_GP, 0
    TRY
    mov eax, cr0
    and eax, ~CR0_CD
    or eax, CR0_NW
    mov cr0, eax
    ENDTRY
    EXPECT_FAULT "MOV CR0 with NW=1, CD=0: #GP(0)", V_GP, 0
    mov eax, cr0
    CHECK "CR0 unchanged by the faulting writes", eax, 0x60000000 | CR0_ET | CR0_PE
    mov eax, 0x12345678
    mov cr2, eax
    mov eax, cr2
    CHECK "CR2 read back", eax, 0x12345678
    mov eax, 0x00023018
    mov cr3, eax
    mov eax, cr3
    CHECK "CR3 read back (PWT, PCD)", eax, 0x00023018
    xor eax, eax
    mov cr3, eax
    mov eax, CR4_PSE | CR4_DE
    mov cr4, eax
    mov eax, cr4
    CHECK "CR4 read back (PSE, DE)", eax, CR4_PSE | CR4_DE
    TRY
    mov eax, 0x80000000
    mov cr4, eax
    ENDTRY
    EXPECT_FAULT "MOV CR4 with a reserved bit (31): #GP(0)", V_GP, 0
    mov eax, cr4
    CHECK "CR4 unchanged by the faulting write", eax, CR4_PSE | CR4_DE
    xor eax, eax
    mov cr4, eax
    TRY
.cr1: db 0x0F, 0x20, 0xC8           ; mov eax, cr1
    ENDTRY
    EXPECT_FAULT "MOV from CR1: #UD", V_UD, ANYERR, .cr1
    TRY
    db 0x0F, 0x22, 0xE8             ; mov cr5, eax
    ENDTRY
    EXPECT_FAULT "MOV to CR5: #UD", V_UD
    TRY
    TO_RING3
    smsw eax
    mov [tmp0], eax
    TO_RING0
    ENDTRY
    EXPECT_NO_FAULT "SMSW at CPL3 is not privileged"
    CHECKM "SMSW at CPL3 value", [tmp0], 0xFFFF, CR0_ET | CR0_PE
    TRY
    TO_RING3
    lmsw ax
    TO_RING0
    ENDTRY
    EXPECT_FAULT "LMSW at CPL3: #GP(0)", V_GP, 0
    TRY
    TO_RING3
    clts
    TO_RING0
    ENDTRY
    EXPECT_FAULT "CLTS at CPL3: #GP(0)", V_GP, 0
    TRY
    TO_RING3
    mov eax, cr0
    TO_RING0
    ENDTRY
    EXPECT_FAULT "MOV from CR0 at CPL3: #GP(0)", V_GP, 0
    TRY
    TO_RING3
    mov cr2, eax
    TO_RING0
    ENDTRY
    EXPECT_FAULT "MOV to CR2 at CPL3: #GP(0)", V_GP, 0
    TRY
    invd
    wbinvd
    ENDTRY
    EXPECT_NO_FAULT "INVD/WBINVD at CPL0"
    TRY
    TO_RING3
    invd
    TO_RING0
    ENDTRY
    EXPECT_FAULT "INVD at CPL3: #GP(0)", V_GP, 0
    TRY
    TO_RING3
    wbinvd
    TO_RING0
    ENDTRY
    EXPECT_FAULT "WBINVD at CPL3: #GP(0)", V_GP, 0

    ; ================================================================ unreal mode
    ; DS = flat 4 GiB in PM, back to real mode (the cached limit survives a real-mode
    ; load of DS), read above 1 MiB with a 32-bit address, then back to PM.
    mov dword [0x200000], 0x5EA1F00D
    mov dword [tmp0], 0
    mov dword [tmp1], 0
    ; real-mode #GP/#SS handler: flags the fault and skips the 4-byte test instruction
    mov dword [13 * 4], (0xF000 << 16) | RM(rm_gp_handler)
    mov dword [12 * 4], (0xF000 << 16) | RM(rm_ss_handler)
    mov ax, SEL_DATA32
    mov ds, ax
    mov ax, SEL_DATA16
    mov es, ax
    mov fs, ax
    mov gs, ax
    jmp SEL_CODE16:RM(.rm16)
    bits 16
.rm16:
    mov ax, SEL_DATA16
    mov ss, ax
    mov eax, cr0
    and al, ~CR0_PE
    mov cr0, eax
    jmp 0xF000:RM(.real)
.real:
    xor ax, ax
    mov ss, ax
    mov sp, 0x0FF0
    lidt [cs:RM(rm_idtr)]
    mov ds, ax                      ; real-mode load: base 0, limit stays 4 GiB
    mov esi, 0x200000
    a32 mov eax, [esi]              ; 67 66 8B 06: 4 bytes
    mov [tmp0], eax
    mov es, ax                      ; ES has a 64 KiB limit: this access faults
    a32 mov eax, [es:esi]           ; 26 67 66 8B 06 (5 bytes, skipped by rm_gp_handler)
    ; back to protected mode
    o32 lgdt [cs:RM(lib_gdtr)]
    o32 lidt [cs:RM(lib_idtr)]
    mov eax, cr0
    or al, CR0_PE
    mov cr0, eax
    jmp dword SEL_CODE32:.pmback
    bits 32
.pmback:
    mov ax, SEL_DATA32
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    mov esp, STACK0_TOP
    CHECK "unreal mode: read above 1 MiB through DS after return to real mode", [tmp0], 0x5EA1F00D
    CHECK "real mode: ES with a 64 KiB limit faults above 0xFFFF (#GP, int 13)", [tmp1], 13

    FINISH

; code for S_FETCH (limit = ABS(fetch_edge) + 1): the 5-byte MOV at fetch_edge crosses it
fetch_jmp:
    jmp fetch_far                   ; near JMP to an offset beyond the limit
fetch_ok:
    nop
fetch_edge:
    mov eax, 0x12345678
    jmp SEL_CODE32:fetch_back

conf_target:                        ; conforming code, reached from CPL 3
    mov ax, cs
    movzx eax, ax
    mov [tmp0], eax
    mov [tmp2], esp
    retf

; real-mode #GP (13) / #SS (12) handlers: record the vector in tmp1, skip the faulting
; 5-byte `es: a32 o32 mov eax, [esi]`
    bits 16
rm_gp_handler:
    mov word [tmp1], 13
    jmp rm_skip5
rm_ss_handler:
    mov word [tmp1], 12
rm_skip5:
    push bp
    mov bp, sp
    add word [bp + 2], 5
    pop bp
    iret
    bits 32
rm_idtr:
    dw 0x3FF
    dd 0
    times 16 db 0x90
fetch_far:
    jmp SEL_CODE32:fetch_back
