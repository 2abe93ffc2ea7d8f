; batch.asm: a Multiboot v1 test kernel (a.out kludge, flat binary) for the checkpoint
; tests (`tests/checkpoint.rs`): a small deterministic batch job that finishes by itself.
;
; It runs N steps (command line "steps=N", default 100; 1..=9999). Each step does about a
; million instructions of integer work (xorshift32 over a 16 KiB table in RAM, with the
; PIT's timer interrupt counting ticks in the background) and prints one line on COM1:
;     step 0001 1a2b3c4d 00000003
; (step number, running hash, timer ticks so far). After the last step it prints
; "batch: done" and powers the machine off through the ACPI PM1a control register
; (the PM block at 0x600, where direct kernel boot puts it): exit status 0.
;
; Build: nasm -f bin -o batch.bin batch.asm
; Run:   x86emu boot --kernel batch.bin --append steps=50 --display none

bits 32
org 0x100000

MB_MAGIC    equ 0x1BADB002
MB_FLAGS    equ 0x00010003          ; page-align modules, memory info, a.out kludge
COM1        equ 0x3F8
PM1A_CNT    equ 0x604
INNER       equ 100000              ; xorshift rounds per step (~10 instructions each)

header:
    dd MB_MAGIC
    dd MB_FLAGS
    dd -(MB_MAGIC + MB_FLAGS)
    dd header                       ; header_addr
    dd header                       ; load_addr
    dd load_end                     ; load_end_addr
    dd bss_end                      ; bss_end_addr
    dd start                        ; entry_addr

start:
    mov esp, stack_top
    mov dword [steps], 100
    ; The command line: "steps=N" anywhere in it.
    test dword [ebx], 4
    jz .no_cmdline
    mov esi, [ebx + 16]
.scan:
    cmp byte [esi], 0
    je .no_cmdline
    cmp dword [esi], 'step'
    jne .next
    cmp word [esi + 4], 's='
    jne .next
    add esi, 6
    xor eax, eax
.digit:
    movzx ecx, byte [esi]
    sub ecx, '0'
    cmp ecx, 9
    ja .parsed
    imul eax, eax, 10
    add eax, ecx
    inc esi
    jmp .digit
.parsed:
    test eax, eax
    jz .no_cmdline
    cmp eax, 9999
    ja .no_cmdline
    mov [steps], eax
    jmp .no_cmdline
.next:
    inc esi
    jmp .scan
.no_cmdline:

    ; Interrupts: the PIC pair remapped to 0x20/0x28, only IRQ 0 unmasked; the PIT at
    ; about 1 kHz (mode 2, divisor 1193).
    lgdt [gdt_desc]
    jmp 0x08:.cs_loaded
.cs_loaded:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov edi, idt
    mov ecx, 48
.fill_idt:
    mov eax, ignore_irq
    cmp ecx, 48 - 0x20              ; vector 0x20: the timer
    jne .not_timer
    mov eax, timer_irq
.not_timer:
    mov [edi], ax
    mov word [edi + 2], 0x08
    mov word [edi + 4], 0x8E00
    shr eax, 16
    mov [edi + 6], ax
    add edi, 8
    dec ecx
    jnz .fill_idt
    lidt [idt_desc]
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
    mov al, 0x34
    out 0x43, al
    mov ax, 1193
    out 0x40, al
    mov al, ah
    out 0x40, al
    sti

    mov edi, 0x12345678             ; the running hash
    xor ebp, ebp                    ; steps done
.step:
    mov ecx, INNER
.work:
    mov eax, edi
    shl eax, 13
    xor edi, eax
    mov eax, edi
    shr eax, 17
    xor edi, eax
    mov eax, edi
    shl eax, 5
    xor edi, eax
    mov ebx, edi
    and ebx, 0xFFF
    add [table + ebx * 4], edi
    dec ecx
    jnz .work
    inc ebp
    mov esi, msg_step
    call print
    mov eax, ebp
    call print_dec4
    mov al, ' '
    call putc
    mov eax, edi
    call print_hex8
    mov al, ' '
    call putc
    mov eax, [ticks]
    call print_hex8
    mov al, 10
    call putc
    cmp ebp, [steps]
    jb .step

    mov esi, msg_done
    call print
    mov dx, PM1A_CNT
    mov ax, 0x2000                  ; SLP_EN, SLP_TYP = 0 (S5)
    out dx, ax
    cli
    hlt

timer_irq:
    push eax
    inc dword [ticks]
    mov al, 0x20
    out 0x20, al
    pop eax
    iret

ignore_irq:
    iret

; Print the NUL-terminated string at ESI.
print:
    lodsb
    test al, al
    jz .done
    call putc
    jmp print
.done:
    ret

; Print AL on COM1 once the transmitter holding register is empty.
putc:
    push edx
    push eax
    mov dx, COM1 + 5
.wait:
    in al, dx
    test al, 0x20
    jz .wait
    pop eax
    mov dx, COM1
    out dx, al
    pop edx
    ret

; EAX as 8 hex digits.
print_hex8:
    push ecx
    mov ecx, 8
.h:
    rol eax, 4
    push eax
    and eax, 15
    mov al, [hex + eax]
    call putc
    pop eax
    dec ecx
    jnz .h
    pop ecx
    ret

; EAX (< 10000) as 4 decimal digits.
print_dec4:
    push ebx
    push ecx
    push edx
    mov ebx, 1000
.d:
    xor edx, edx
    div ebx
    push edx
    add al, '0'
    call putc
    mov eax, ebx
    xor edx, edx
    mov ecx, 10
    div ecx
    mov ebx, eax
    pop eax
    test ebx, ebx
    jnz .d
    pop edx
    pop ecx
    pop ebx
    ret

hex:      db "0123456789abcdef"
msg_step: db "step ", 0
msg_done: db "batch: done", 10, 0

align 8
gdt:
    dq 0
    dq 0x00CF9A000000FFFF           ; 0x08: flat 32-bit code
    dq 0x00CF92000000FFFF           ; 0x10: flat data
gdt_desc:
    dw gdt_desc - gdt - 1
    dd gdt
idt_desc:
    dw 48 * 8 - 1
    dd idt

align 4
load_end:

absolute load_end                   ; the BSS: not in the file, zeroed by the loader
steps:      resd 1
ticks:      resd 1
alignb 8
idt:        resb 48 * 8
alignb 4096                         ; not in a page with code (no self-modifying-code work)
table:      resd 4096
            resb 4096
stack_top:
bss_end:
