; golden.asm: the ROM behind the golden snapshot (tests/fixtures/golden-pc.snap).
;
; A 64 KiB BIOS-replacement image for the PC machine (x86emu's `PcMachine` with this
; image as its BIOS, 2 MiB of RAM, a 64 KiB hard disk on IDE 0:0). It touches a little
; of everything a snapshot must carry:
;   - CPU: real mode, then 32-bit protected mode with paging, an IDT, x87 state;
;   - RAM: a buffer rewritten by a linear congruential generator on every tick;
;   - COM1: all output goes to the serial port (115200 8N1, FIFOs on);
;   - CMOS: the RTC date and time are read and printed at the start and at the end;
;   - PIT + PIC: IRQ 0 at 100 Hz drives the main loop, which waits in HLT;
;   - IDE: sector 0 is read and checksummed, sector 1 written (into the copy-on-write
;     overlay) and read back.
; Every 25 ticks it prints the checksum; after TICKS (1.5 s of virtual time) it prints
; a summary and writes the final checksum's low byte to the isa-debug-exit port (0xF4),
; which stops the machine.
;
; Build: nasm -f bin -o golden.bin golden.asm. The binary is committed beside the
; fixture (tests/fixtures/golden-rom.bin): the snapshot records the firmware's SHA-256,
; so the fixture needs exactly these bytes. Do not change this file without
; regenerating the fixture (see docs/snapshot-format.md, "The golden snapshot").

bits 16
org 0x0000                      ; the ROM is seen at F0000 (and at FFFF0000)

ROMBASE     equ 0xF0000
STACK_TOP   equ 0x90000
IDT_BASE    equ 0x1000
PD_BASE     equ 0x2000
PT_BASE     equ 0x3000
TICKS_VAR   equ 0x500           ; dword: timer ticks
SUM_VAR     equ 0x504           ; dword: running checksum
SEED_VAR    equ 0x508           ; dword: generator state
SECTOR_BUF  equ 0x10000
BUF         equ 0x100000        ; 16 KiB work buffer above 1 MiB
BUF_DWORDS  equ 4096
TICKS       equ 150
COM1        equ 0x3F8

start:
    cli
    cld
    xor ax, ax
    mov ss, ax
    mov sp, 0x7000
    mov ds, ax
    mov es, ax

    ; COM1: 115200 baud, 8N1, FIFOs on, DTR/RTS.
    mov dx, COM1 + 3
    mov al, 0x83
    out dx, al
    mov dx, COM1
    mov al, 1
    out dx, al
    inc dx
    xor al, al
    out dx, al
    mov dx, COM1 + 3
    mov al, 0x03
    out dx, al
    mov dx, COM1 + 2
    mov al, 0xC7
    out dx, al
    mov dx, COM1 + 4
    mov al, 0x03
    out dx, al

    ; A20 on (port 0x92), then protected mode.
    in al, 0x92
    or al, 2
    out 0x92, al
    o32 lgdt [cs:gdt_desc]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    jmp dword 0x08:(ROMBASE + pm_entry)

bits 32
pm_entry:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov fs, ax
    mov gs, ax
    mov esp, STACK_TOP

    mov esi, ROMBASE + msg_start
    call puts

    ; The RTC as the guest sees it at power-on.
    call print_rtc

    ; IDT: exceptions stop the machine, IRQ 0 counts ticks, other IRQs are acknowledged.
    mov edi, IDT_BASE
    xor ecx, ecx
.idt:
    mov eax, ROMBASE + exc_handler
    cmp ecx, 0x20
    jb .set
    mov eax, ROMBASE + irq0_handler
    je .set
    mov eax, ROMBASE + spurious_handler
.set:
    mov [edi], ax
    mov word [edi + 2], 0x08
    mov word [edi + 4], 0x8E00
    shr eax, 16
    mov [edi + 6], ax
    add edi, 8
    inc ecx
    cmp ecx, 0x30
    jb .idt
    lidt [ROMBASE + idt_desc]

    ; Paging: identity map of the first 4 MiB.
    mov edi, PT_BASE
    mov eax, 0x003
.pt:
    mov [edi], eax
    add eax, 0x1000
    add edi, 4
    cmp edi, PT_BASE + 4096
    jb .pt
    mov dword [PD_BASE], PT_BASE | 3
    mov eax, PD_BASE
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax

    ; x87: leave pi * 2 on the stack and the control word changed.
    fninit
    fldpi
    fld1
    fadd st0, st0
    fmulp st1, st0
    fldcw [ROMBASE + fpu_cw]

    ; PIC: vectors 0x20/0x28, only IRQ 0 unmasked.
    mov al, 0x11
    out 0x20, al
    out 0xA0, al
    mov al, 0x20
    out 0x21, al
    mov al, 0x28
    out 0xA1, al
    mov al, 4
    out 0x21, al
    mov al, 2
    out 0xA1, al
    mov al, 1
    out 0x21, al
    out 0xA1, al
    mov al, 0xFE
    out 0x21, al
    mov al, 0xFF
    out 0xA1, al

    ; PIT channel 0: mode 2, 100 Hz.
    mov al, 0x34
    out 0x43, al
    mov ax, 11932
    out 0x40, al
    mov al, ah
    out 0x40, al

    call ide_test

    mov dword [TICKS_VAR], 0
    mov dword [SUM_VAR], 0
    mov dword [SEED_VAR], 12345
    sti

main_loop:
    ; Work: rewrite the buffer from the generator and fold it into the checksum.
    mov edi, BUF
    mov ecx, BUF_DWORDS
    mov eax, [SEED_VAR]
    mov ebx, [SUM_VAR]
.fill:
    imul eax, eax, 1103515245
    add eax, 12345
    mov [edi], eax
    rol ebx, 5
    xor ebx, eax
    add edi, 4
    dec ecx
    jnz .fill
    mov [SEED_VAR], eax
    mov [SUM_VAR], ebx

    ; Wait for the next tick.
    mov edx, [TICKS_VAR]
.wait:
    hlt
    cmp [TICKS_VAR], edx
    je .wait

    mov eax, [TICKS_VAR]
    xor edx, edx
    mov ecx, 25
    div ecx
    test edx, edx
    jnz .no_print
    mov esi, ROMBASE + msg_tick
    call puts
    mov eax, [TICKS_VAR]
    call put_dec
    mov esi, ROMBASE + msg_sum
    call puts
    mov eax, [SUM_VAR]
    call put_hex32
    mov esi, ROMBASE + msg_crlf
    call puts
.no_print:
    cmp dword [TICKS_VAR], TICKS
    jb main_loop

    cli
    call print_rtc
    ; x87 result: the integer part of 2 * pi under the changed control word.
    mov esi, ROMBASE + msg_fpu
    call puts
    fistp dword [0x50C]
    mov eax, [0x50C]
    call put_dec
    mov esi, ROMBASE + msg_done
    call puts
    mov eax, [SUM_VAR]
    call put_hex32
    mov esi, ROMBASE + msg_crlf
    call puts
    mov al, [SUM_VAR]
    out 0xF4, al
    hlt

; ---- interrupt handlers -------------------------------------------------------------

irq0_handler:
    inc dword [TICKS_VAR]
    push eax
    mov al, 0x20
    out 0x20, al
    pop eax
    iretd

spurious_handler:
    push eax
    mov al, 0x20
    out 0xA0, al
    out 0x20, al
    pop eax
    iretd

exc_handler:
    mov esi, ROMBASE + msg_exc
    call puts
    mov al, 0x7F
    out 0xF4, al
    hlt

; ---- IDE ----------------------------------------------------------------------------

ide_wait:                       ; wait while BSY; returns status in al
    mov dx, 0x1F7
.w:
    in al, dx
    test al, 0x80
    jnz .w
    ret

ide_drq:                        ; wait for DRQ (or ERR)
    call ide_wait
    test al, 0x09
    jz ide_drq
    ret

; ide_cmd: eax = LBA (< 2^24), bl = command; one sector.
ide_cmd:
    push eax
    mov dx, 0x3F6
    mov al, 0x02                ; nIEN: polling
    out dx, al
    call ide_wait
    pop eax
    mov dx, 0x1F2
    push eax
    mov al, 1
    out dx, al
    pop eax
    inc dx                      ; 0x1F3: LBA 0-7
    out dx, al
    inc dx
    shr eax, 8
    out dx, al                  ; 0x1F4: LBA 8-15
    inc dx
    shr eax, 8
    out dx, al                  ; 0x1F5: LBA 16-23
    inc dx
    mov al, 0xE0                ; 0x1F6: master, LBA
    out dx, al
    inc dx
    mov al, bl
    out dx, al                  ; 0x1F7: command
    ret

ide_test:
    ; Read sector 0 and print the sum of its dwords.
    xor eax, eax
    mov bl, 0x20
    call ide_cmd
    call ide_drq
    mov edi, SECTOR_BUF
    mov ecx, 256
    mov dx, 0x1F0
    rep insw
    mov esi, ROMBASE + msg_sec0
    call puts
    call sector_sum
    call put_hex32
    mov esi, ROMBASE + msg_crlf
    call puts

    ; Write sector 1: the text of msg_sector repeated, then read it back.
    mov edi, SECTOR_BUF
    mov ecx, 512
    xor ebx, ebx
.pat:
    mov al, [ROMBASE + msg_sector + ebx]
    stosb
    inc ebx
    cmp ebx, msg_sector_len
    jb .nx
    xor ebx, ebx
.nx:
    dec ecx
    jnz .pat
    mov eax, 1
    mov bl, 0x30
    call ide_cmd
    call ide_drq
    mov esi, SECTOR_BUF
    mov ecx, 256
    mov dx, 0x1F0
    rep outsw
    call ide_wait
    mov edi, SECTOR_BUF
    mov ecx, 128
    xor eax, eax
    rep stosd
    mov eax, 1
    mov bl, 0x20
    call ide_cmd
    call ide_drq
    mov edi, SECTOR_BUF
    mov ecx, 256
    mov dx, 0x1F0
    rep insw
    mov esi, ROMBASE + msg_sec1
    call puts
    call sector_sum
    call put_hex32
    mov esi, ROMBASE + msg_crlf
    call puts
    ret

sector_sum:                     ; eax = sum of the 128 dwords at SECTOR_BUF
    mov esi, SECTOR_BUF
    mov ecx, 128
    xor ebx, ebx
.s:
    lodsd
    add ebx, eax
    dec ecx
    jnz .s
    mov eax, ebx
    ret

; ---- CMOS ---------------------------------------------------------------------------

cmos_read:                      ; al = register -> al = value
    out 0x70, al
    in al, 0x71
    ret

print_rtc:
    mov esi, ROMBASE + msg_rtc
    call puts
    mov al, 0x0A                ; wait until no update is in progress
.uip:
    mov al, 0x0A
    call cmos_read
    test al, 0x80
    jnz .uip
    mov al, 0x32                ; century
    call cmos_read
    call put_hex8
    mov al, 0x09
    call cmos_read
    call put_hex8
    mov al, '-'
    call putc
    mov al, 0x08
    call cmos_read
    call put_hex8
    mov al, '-'
    call putc
    mov al, 0x07
    call cmos_read
    call put_hex8
    mov al, ' '
    call putc
    mov al, 0x04
    call cmos_read
    call put_hex8
    mov al, ':'
    call putc
    mov al, 0x02
    call cmos_read
    call put_hex8
    mov al, ':'
    call putc
    mov al, 0x00
    call cmos_read
    call put_hex8
    mov esi, ROMBASE + msg_crlf
    call puts
    ret

; ---- serial output ------------------------------------------------------------------

putc:                           ; al
    push edx
    push eax
    mov dx, COM1 + 5
.w:
    in al, dx
    test al, 0x20
    jz .w
    pop eax
    mov dx, COM1
    out dx, al
    pop edx
    ret

puts:                           ; esi = NUL-terminated string
    push eax
.n:
    lodsb
    test al, al
    jz .d
    call putc
    jmp .n
.d:
    pop eax
    ret

put_hex8:                       ; al
    push eax
    shr al, 4
    call put_nibble
    pop eax
    push eax
    call put_nibble
    pop eax
    ret

put_nibble:
    and al, 0x0F
    add al, '0'
    cmp al, '9'
    jbe .p
    add al, 'a' - '9' - 1
.p:
    call putc
    ret

put_hex32:                      ; eax
    push ecx
    mov ecx, 4
.b:
    rol eax, 8
    call put_hex8
    dec ecx
    jnz .b
    pop ecx
    ret

put_dec:                        ; eax, unsigned
    push ebx
    push ecx
    push edx
    mov ebx, 10
    xor ecx, ecx
.d:
    xor edx, edx
    div ebx
    push edx
    inc ecx
    test eax, eax
    jnz .d
.o:
    pop eax
    add al, '0'
    call putc
    dec ecx
    jnz .o
    pop edx
    pop ecx
    pop ebx
    ret

; ---- data ---------------------------------------------------------------------------

align 8
gdt:
    dq 0
    dq 0x00CF9A000000FFFF       ; 0x08: code, flat 4 GiB
    dq 0x00CF92000000FFFF       ; 0x10: data, flat 4 GiB
gdt_end:
gdt_desc:
    dw gdt_end - gdt - 1
    dd ROMBASE + gdt
idt_desc:
    dw 0x30 * 8 - 1
    dd IDT_BASE
fpu_cw:
    dw 0x0F7F                   ; round toward zero, all exceptions masked

msg_start:  db "golden: start", 13, 10, 0
msg_rtc:    db "rtc ", 0
msg_tick:   db "tick ", 0
msg_sum:    db " sum ", 0
msg_crlf:   db 13, 10, 0
msg_sec0:   db "sector 0 sum ", 0
msg_sec1:   db "sector 1 sum ", 0
msg_fpu:    db "fpu ", 0
msg_done:   db 13, 10, "golden: done ", 0
msg_exc:    db 13, 10, "golden: unexpected exception", 13, 10, 0
msg_sector: db "x86emu golden snapshot sector. "
msg_sector_len equ $ - msg_sector

times 0xFFF0 - ($ - $$) db 0xFF
bits 16
reset:                          ; F000:FFF0, the reset vector
    jmp 0xF000:start
times 0x10000 - ($ - $$) db 0xFF
