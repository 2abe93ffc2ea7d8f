; hello.asm: the smallest useful BIOS-replacement ROM for `x86emu run-rom`.
; Prints "hello" on the debug console (port 0xE9) and exits through the
; isa-debug-exit port (0xF4) with value 0, i.e. process exit status 1.
;
; Build: nasm -f bin -o hello.bin hello.asm   (64 KiB image)

bits 16
org 0x0000                      ; offset 0 of the ROM, which the CPU sees at F000:0000

start:
    cli
    mov ax, cs
    mov ds, ax
    mov si, msg
    mov dx, 0xE9
.next:
    lodsb
    test al, al
    jz .done
    out dx, al
    jmp .next
.done:
    mov al, 0
    out 0xF4, al
    hlt                         ; not reached: the machine stops at the port write

msg: db "hello", 10, 0

times 0xFFF0 - ($ - $$) db 0xFF
reset:                          ; F000:FFF0, the reset vector
    jmp 0xF000:start
times 0x10000 - ($ - $$) db 0xFF
