; multiboot.asm: a minimal Multiboot v1 kernel (a.out kludge, flat binary) for
; `x86emu boot --kernel`. It checks the loader's hand-off (EAX magic, the info block's
; flags, the command line and module 0), prints a verdict on COM1 and exits through
; isa-debug-exit: value 0 (status 1) when everything matched, 1 (status 3) otherwise.
;
; Build: nasm -f bin -o multiboot.bin multiboot.asm
; Run:   x86emu boot --kernel multiboot.bin --initrd SOME_FILE --append "hello mb"

bits 32
org 0x100000

MB_MAGIC    equ 0x1BADB002
MB_FLAGS    equ 0x00010003          ; page-align modules, memory info, a.out kludge
COM1        equ 0x3F8

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
    cmp eax, 0x2BADB002
    jne fail
    mov esi, ebx                    ; multiboot_info
    mov eax, [esi]                  ; flags
    test eax, 1                     ; mem_lower/mem_upper
    jz fail
    test eax, 4                     ; cmdline
    jz fail
    test eax, 8                     ; mods
    jz fail
    cmp dword [esi + 4], 600        ; mem_lower (KiB) is about 639
    jb fail
    ; The command line must be "hello mb".
    mov edi, [esi + 16]
    mov ecx, expected_len
    mov edx, expected
.cmp:
    mov al, [edi]
    cmp al, [edx]
    jne fail
    inc edi
    inc edx
    loop .cmp
    cmp byte [edi], 0
    jne fail
    ; One module whose first bytes are "MOD0".
    cmp dword [esi + 20], 1         ; mods_count
    jne fail
    mov edi, [esi + 24]             ; mods_addr
    mov edi, [edi]                  ; mod_start
    cmp dword [edi], 0x30444F4D     ; "MOD0"
    jne fail
    ; The BSS must be zero.
    cmp dword [bss_probe], 0
    jne fail
    mov esi, msg_ok
    call print
    mov al, 0
    out 0xF4, al
    hlt
fail:
    mov esi, msg_fail
    call print
    mov al, 1
    out 0xF4, al
    hlt

; Print the NUL-terminated string at ESI on COM1 (polling THRE).
print:
    mov dx, COM1 + 5
.wait:
    in al, dx
    test al, 0x20
    jz .wait
    lodsb
    test al, al
    jz .done
    mov dx, COM1
    out dx, al
    mov dx, COM1 + 5
    jmp .wait
.done:
    ret

expected: db "hello mb"
expected_len equ $ - expected
msg_ok:   db "multiboot: ok", 10, 0
msg_fail: db "multiboot: FAIL", 10, 0

align 4
load_end:

absolute load_end                   ; the BSS: not in the file, zeroed by the loader
bss_probe: resd 1
           resb 4096
stack_top:
bss_end:
