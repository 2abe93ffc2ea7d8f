; iobitmap.asm — the TSS I/O permission bitmap for IN/OUT/INS/OUTS at CPL 3 with IOPL 0:
; allowed and denied ports, byte/word/dword accesses (every covered bit must be 0, including
; accesses whose bits straddle two bitmap bytes), ports beyond the bitmap and the TSS limit,
; the two-byte bitmap read at the end of the map, no bitmap at all (base beyond the limit),
; CPL <= IOPL bypassing the bitmap (ring 3 with IOPL 3, ring 1 with IOPL 1), string I/O
; faults leaving ESI/EDI. References: Intel SDM vol. 1 §19.5 (I/O permission bit map),
; vol. 3 §7.2.1 (TSS), vol. 2 IN, OUT, INS, OUTS.

%include "lib.inc"

IOBASE      equ 0x68
BITMAP      equ TSS0 + IOBASE

%macro ALLOW 1
    mov eax, %1
    btr [BITMAP], eax
%endmacro
; IOTEST "name", {instruction(s)}, expected vector (NOFAULT or V_GP) — at CPL3, IOPL from EFLAGS
%macro IOTEST 3
    TRY
    TO_RING3
    mov edx, [ss:tmp2]              ; port for DX forms
%%f: %2
    TO_RING0
    ENDTRY
  %if %3 == NOFAULT
    EXPECT_NO_FAULT %1
  %else
    EXPECT_FAULT %1, %3, 0, %%f
  %endif
%endmacro
%macro PORT 1
    mov dword [tmp2], %1
%endmacro

main:
    mov edi, BITMAP
    mov al, 0xFF
    mov ecx, 0x2000 + 1
    rep stosb
    ALLOW 0xE9
    ALLOW 0x300
    ALLOW 0x302
    ALLOW 0x303
    ALLOW 0x304
    ALLOW 0x305
    ALLOW 0x306
    ALLOW 0x307
    ALLOW 0x30F
    ALLOW 0x310
    ALLOW 0x3F8
    mov word [TSS0 + 0x66], IOBASE
    mov eax, IOBASE + 0x2000
    call set_tss_limit

    ; ================================================================ full bitmap, CPL3, IOPL0
    IOTEST "IN AL, imm8 from an allowed port", {in al, 0xE9}, NOFAULT
    TRY
    TO_RING3
    mov al, 0
    in al, 0xE9
    movzx eax, al
    mov [tmp0], eax
    TO_RING0
    ENDTRY
    CHECK "the allowed IN really read the port (0xE9 reads 0xE9)", [tmp0], 0xE9
    PORT 0x301
    IOTEST "IN AL, DX from a denied port: #GP(0)", {in al, dx}, V_GP
    PORT 0x300
    IOTEST "OUT DX, AL to an allowed port", {out dx, al}, NOFAULT
    IOTEST "OUT DX, AX over an allowed + a denied port: #GP(0)", {out dx, ax}, V_GP
    IOTEST "IN EAX, DX over 0x300-0x303 (0x301 denied): #GP(0)", {in eax, dx}, V_GP
    PORT 0x302
    IOTEST "IN AX, DX over two allowed ports", {in ax, dx}, NOFAULT
    IOTEST "IN EAX, DX over four allowed ports", {in eax, dx}, NOFAULT
    PORT 0x304
    IOTEST "OUT DX, EAX over 0x304-0x307 (allowed)", {out dx, eax}, NOFAULT
    PORT 0x306
    IOTEST "IN EAX, DX over 0x306-0x309 (0x308 denied, next bitmap byte): #GP(0)", {in eax, dx}, V_GP
    PORT 0x307
    IOTEST "IN AX, DX over 0x307-0x308 (straddles bitmap bytes, 0x308 denied): #GP(0)", {in ax, dx}, V_GP
    PORT 0x30F
    IOTEST "IN AX, DX over 0x30F-0x310 (straddles bitmap bytes, both allowed)", {in ax, dx}, NOFAULT
    PORT 0x80
    IOTEST "OUT imm8 to a denied port: #GP(0)", {out 0x80, al}, V_GP
    IOTEST "OUT to port 0xF4 is checked too: #GP(0)", {out 0xF4, al}, V_GP
    ; string I/O
    mov byte [SCRATCH], 0
    TRY
    TO_RING3
    mov dx, 0xE9
    mov edi, SCRATCH
    cld
    insb
    mov [tmp0], edi
    TO_RING0
    ENDTRY
    EXPECT_NO_FAULT "INSB from an allowed port"
    movzx eax, byte [SCRATCH]
    CHECK "INSB stored the port value", eax, 0xE9
    CHECK "INSB advanced EDI", [tmp0], SCRATCH + 1
    TRY
    TO_RING3
    mov dx, 0x301
    mov esi, SCRATCH
.o1: outsb
    TO_RING0
    ENDTRY
    EXPECT_FAULT "OUTSB to a denied port: #GP(0)", V_GP, 0, .o1
    CHECK "faulting OUTSB leaves ESI", [rec_esi], SCRATCH
    TRY
    TO_RING3
    mov dx, 0x300
    mov edi, SCRATCH
.o2: insw
    TO_RING0
    ENDTRY
    EXPECT_FAULT "INSW over 0x300-0x301: #GP(0)", V_GP, 0, .o2
    CHECK "faulting INSW leaves EDI", [rec_edi], SCRATCH
    TRY
    TO_RING3
    mov dx, 0x301
    mov esi, SCRATCH
    mov ecx, 4
.o3: rep outsb
    TO_RING0
    ENDTRY
    EXPECT_FAULT "REP OUTSB to a denied port: #GP(0) before the first iteration", V_GP, 0, .o3
    CHECK "REP OUTSB: ECX unchanged", [rec_ecx], 4

    ; ================================================================ CPL <= IOPL bypasses the bitmap
    push dword EFL_IOPL3 | 2
    popfd
    PORT 0x301
    IOTEST "CPL3 with IOPL3: denied port allowed (bitmap not consulted)", {in al, dx}, NOFAULT
    push dword (1 << 12) | 2
    popfd
    IOTEST "CPL3 with IOPL1: bitmap consulted: #GP(0)", {in al, dx}, V_GP
    push dword (1 << 12) | 2
    popfd
    TRY
    TO_RING SEL_CODE32_R1, SEL_DATA32_R1, STACK1_TOP
    mov dx, 0x301
    in al, dx
    TO_RING0
    ENDTRY
    EXPECT_NO_FAULT "CPL1 with IOPL1: denied port allowed"
    push dword 2
    popfd
    TRY
    mov dx, 0x301
    in al, dx
    ENDTRY
    EXPECT_NO_FAULT "CPL0 with IOPL0: no bitmap check"

    ; ================================================================ limits
    mov eax, IOBASE + 0x7F          ; bitmap bytes 0..0x7F (ports 0-0x3FF), no extra byte
    call set_tss_limit
    PORT 0x300
    IOTEST "short bitmap: allowed port well inside", {in al, dx}, NOFAULT
    PORT 0x400
    IOTEST "short bitmap: port beyond the TSS limit: #GP(0)", {in al, dx}, V_GP
    PORT 0x3F8
    IOTEST "short bitmap: allowed port in the last byte, two-byte read past the limit: #GP(0)", {in al, dx}, V_GP
    mov eax, IOBASE + 0x80          ; the next byte (all ones) inside the limit
    call set_tss_limit
    IOTEST "with the extra byte inside the limit: the same port allowed", {in al, dx}, NOFAULT
    PORT 0xE9
    mov eax, IOBASE - 1             ; I/O map base = limit + 1: no bitmap
    call set_tss_limit
    IOTEST "map base beyond the TSS limit: every port denied: #GP(0)", {in al, dx}, V_GP
    mov eax, IOBASE + 0x2000
    call set_tss_limit
    mov word [TSS0 + 0x66], 0xFFFF
    IOTEST "map base 0xFFFF: #GP(0)", {in al, dx}, V_GP
    mov word [TSS0 + 0x66], IOBASE
    IOTEST "map base restored: allowed again", {in al, dx}, NOFAULT

    FINISH

; set_tss_limit: EAX = new limit of TSS0 (< 64 KiB); reloads TR so the limit takes effect
set_tss_limit:
    mov [GDT_BASE + SEL_TSS0], ax
    and byte [GDT_BASE + SEL_TSS0 + 6], 0xF0
    mov byte [GDT_BASE + SEL_TSS0 + 5], ACC_TSS32
    push eax
    mov ax, SEL_TSS0
    ltr ax
    pop eax
    ret
