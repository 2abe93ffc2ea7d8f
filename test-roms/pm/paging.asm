; paging.asm — 32-bit paging (4 KiB and 4 MiB pages) and PAE paging (2 MiB pages, NX):
; #PF error codes (P, W/R, U/S, RSVD, I/D) and CR2, accessed/dirty bits (set on use, not set
; by faulting accesses), CR0.WP for supervisor writes, U/S and R/W combined from PDE and
; PTE, CR4.PSE 4 MiB pages, CR4.PGE global pages (CR3 reload vs INVLPG vs toggling PGE),
; PAE with the PDPTE registers, EFER.NXE, reserved-bit faults, #GP for reserved PDPTE bits
; on a CR3 load, A20 masking through port 0x92 (with and without paging).
; References: Intel SDM vol. 3 ch. 4 (4.3 32-bit paging, 4.4 PAE, 4.6 access rights,
; 4.7 page-fault error code, 4.8 A/D flags, 4.10 TLBs), vol. 2 INVLPG, MOV CR.

%include "lib.inc"

%define PTE(lin) (PT_BASE + ((lin) >> 12) * 4)
%define PDE(lin) (PD_BASE + ((lin) >> 22) * 4)
PG_P    equ 1
PG_RW   equ 2
PG_US   equ 4
PG_A    equ 0x20
PG_D    equ 0x40
PG_PS   equ 0x80
PG_G    equ 0x100
PF_P    equ 1
PF_W    equ 2
PF_U    equ 4
PF_RSVD equ 8
PF_ID   equ 0x10

TP_NP   equ 0x500000        ; test pages (PDE 1, identity page table)
TP_SUP  equ 0x501000
TP_URO  equ 0x502000
TP_SRO  equ 0x503000
TP_AD   equ 0x504000
TP_X    equ 0x505000
TP_Y    equ 0x506000
TP_SPL  equ 0x507000        ; present page followed by the not-present TP_SPL + 0x1000
TP_G    equ 0x600000        ; global page
TP_NG   equ 0x601000        ; non-global page
PHYS_A  equ 0x700000
PHYS_B  equ 0x701000
PHYS_C  equ 0x702000
PHYS_D  equ 0x703000        ; code page for the alias SMC check
LIN_4M  equ 0x1000000       ; PDE 4: a 4 MiB page (→ physical 0x400000)
LIN_UPD equ 0x800000        ; PDE 2: U/S and R/W combined from PDE and PTE
PF_COUNT equ ROMVARS

; PAE structures
PDPT    equ 0x26000
PAE_PD0 equ 0x27000
PAE_PT  equ 0x28000         ; 4 KiB pages for 0x400000-0x5FFFFF (PD0 entry 2)
PAE_PDX equ 0x29000         ; an alternative PD for the PDPTE-register check
%define PAEPTE(lin) (PAE_PT + (((lin) - 0x400000) >> 12) * 8)

; SETPTE lin, value: write a 32-bit PTE and INVLPG the page
%macro SETPTE 2
    mov dword [PTE(%1)], %2
    invlpg [%1]
%endmacro
; PTEBYTE reg, lin: low byte of the PTE
%macro PTEBYTE 2
    movzx %1, byte [PTE(%2)]
%endmacro

main:
    call paging_identity
    call paging_on
    mov eax, cr0
    CHECKM "paging on: CR0.PG", eax, CR0_PG | CR0_PE, CR0_PG | CR0_PE
    mov dword [PHYS_A], 0xAAAA0001
    mov dword [PHYS_B], 0xBBBB0002
    mov dword [PHYS_C], 0xCCCC0003

    ; ================================================================ error codes and CR2
    SETPTE TP_NP, 0
    TRY
.e1: mov eax, [TP_NP + 0x123]
    ENDTRY
    EXPECT_FAULT "supervisor read, not present: #PF(0)", V_PF, 0, .e1
    CHECK "CR2 = faulting linear address", [rec_cr2], TP_NP + 0x123
    TRY
    mov dword [TP_NP + 0xFFC], 1
    ENDTRY
    EXPECT_FAULT "supervisor write, not present: #PF(W)", V_PF, PF_W
    CHECK "CR2 (write)", [rec_cr2], TP_NP + 0xFFC
    TRY
    TO_RING3
    mov eax, [TP_NP]
    TO_RING0
    ENDTRY
    EXPECT_FAULT "user read, not present: #PF(U)", V_PF, PF_U
    TRY
    TO_RING3
    mov byte [TP_NP + 7], 1
    TO_RING0
    ENDTRY
    EXPECT_FAULT "user write, not present: #PF(U|W)", V_PF, PF_U | PF_W
    CHECK "CR2 (user write)", [rec_cr2], TP_NP + 7
    SETPTE TP_SUP, TP_SUP | PG_P | PG_RW
    TRY
    TO_RING3
.e2: mov eax, [TP_SUP]
    TO_RING0
    ENDTRY
    EXPECT_FAULT "user read of a supervisor page: #PF(P|U)", V_PF, PF_P | PF_U, .e2
    SETPTE TP_URO, TP_URO | PG_P | PG_US
    TRY
    TO_RING3
    mov eax, [TP_URO]
    mov [tmp0], eax
    TO_RING0
    ENDTRY
    EXPECT_NO_FAULT "user read of a read-only user page"
    TRY
    TO_RING3
    mov dword [TP_URO + 8], 1
    TO_RING0
    ENDTRY
    EXPECT_FAULT "user write of a read-only user page: #PF(P|W|U)", V_PF, PF_P | PF_W | PF_U
    TRY
    mov eax, [TP_URO]
    ENDTRY
    EXPECT_NO_FAULT "supervisor read of a user page"
    ; instruction fetch from a not-present page (32-bit paging: I/D stays 0)
    TRY
.e3: call TP_NP + 0x10
    ENDTRY
    EXPECT_FAULT "fetch from a not-present page: #PF(0) (no I/D without PAE+NXE)", V_PF, 0, TP_NP + 0x10
    CHECK "fetch fault: CR2 = target", [rec_cr2], TP_NP + 0x10
    ; page-straddling write: nothing written
    SETPTE TP_SPL, TP_SPL | PG_P | PG_RW | PG_US
    SETPTE TP_SPL + 0x1000, 0
    mov dword [TP_SPL + 0xFFC], 0x11111111
    TRY
    mov dword [TP_SPL + 0xFFE], 0x22222222
    ENDTRY
    EXPECT_FAULT "dword write straddling into a not-present page: #PF(W)", V_PF, PF_W
    CHECK "straddling write: first page unchanged", [TP_SPL + 0xFFC], 0x11111111

    ; REP MOVSB running into a not-present page: registers show the completed iterations
    mov edi, SCRATCH
    mov al, 0x5A
    mov ecx, 0x40
    rep stosb
    mov dword [TP_SPL + 0xFF0], 0
    TRY
    mov esi, SCRATCH
    mov edi, TP_SPL + 0xFF0
    mov ecx, 0x20
.rep: rep movsb
    ENDTRY
    EXPECT_FAULT "REP MOVSB into a not-present page: #PF(W)", V_PF, PF_W, .rep
    CHECK "REP MOVSB fault: CR2 = first byte of the missing page", [rec_cr2], TP_SPL + 0x1000
    CHECK "REP MOVSB fault: ECX = remaining iterations", [rec_ecx], 0x10
    CHECK "REP MOVSB fault: EDI at the missing page", [rec_edi], TP_SPL + 0x1000
    CHECK "REP MOVSB fault: ESI advanced by the completed iterations", [rec_esi], SCRATCH + 0x10
    CHECK "REP MOVSB fault: completed bytes written", [TP_SPL + 0xFFC], 0x5A5A5A5A

    ; demand paging: a #PF handler makes the page present and IRETs; the faulting
    ; instruction restarts and completes
    IDTGATE V_PF, SEL_CODE32, h_pf_fix, ACC_INTGATE32
    SETPTE TP_NP, TP_NP | PG_RW | PG_US             ; P=0
    call paging_off
    mov dword [TP_NP + 0x10], 0x600DF00D            ; identity: write the physical page
    call paging_on
    mov dword [PF_COUNT], 0
    mov eax, 0
    mov eax, [TP_NP + 0x10]
    CHECK "restarted MOV after the handler mapped the page: value", eax, 0x600DF00D
    CHECK "restarted MOV: one #PF", [PF_COUNT], 1
    SETPTE TP_SPL + 0x1000, (TP_SPL + 0x1000) | PG_RW | PG_US     ; P=0
    mov dword [PF_COUNT], 0
    mov esi, SCRATCH
    mov edi, TP_SPL + 0xFF0
    mov ecx, 0x20
    rep movsb
    CHECK "restarted REP MOVSB: one #PF", [PF_COUNT], 1
    CHECK "restarted REP MOVSB: ECX = 0", ecx, 0
    CHECK "restarted REP MOVSB: EDI at the end", edi, TP_SPL + 0x1010
    CHECK "restarted REP MOVSB: last bytes copied", [TP_SPL + 0x100C], 0x5A5A5A5A
    SETPTE TP_X, TP_X | PG_RW | PG_US
    SETPTE TP_Y, TP_Y | PG_RW | PG_US
    mov dword [PF_COUNT], 0
    mov esi, TP_X
    mov edi, TP_Y
    movsd
    CHECK "MOVSD with both pages missing: two #PF, then completes", [PF_COUNT], 2
    CHECK "MOVSD: ESI advanced once", esi, TP_X + 4
    call lib_restore_idt

    ; ================================================================ accessed / dirty
    mov dword [PDE(TP_AD)], (PT_BASE + 0x1000) | PG_P | PG_RW | PG_US
    SETPTE TP_AD, TP_AD | PG_P | PG_RW | PG_US
    mov eax, cr3
    mov cr3, eax
    mov eax, [TP_AD]
    PTEBYTE eax, TP_AD
    CHECK "read sets PTE.A only", eax, PG_P | PG_RW | PG_US | PG_A
    movzx eax, byte [PDE(TP_AD)]
    CHECK "read sets PDE.A", eax, PG_P | PG_RW | PG_US | PG_A
    mov dword [PDE(TP_AD)], (PT_BASE + 0x1000) | PG_P | PG_RW | PG_US
    SETPTE TP_AD, TP_AD | PG_P | PG_RW | PG_US
    mov eax, cr3
    mov cr3, eax
    mov dword [TP_AD], 5
    PTEBYTE eax, TP_AD
    CHECK "write sets PTE.A and PTE.D", eax, PG_P | PG_RW | PG_US | PG_A | PG_D
    movzx eax, byte [PDE(TP_AD)]
    CHECK "write sets PDE.A, not PDE.D (4 KiB page)", eax, PG_P | PG_RW | PG_US | PG_A
    SETPTE TP_AD, TP_AD | PG_P | PG_RW | PG_US | PG_A
    mov eax, [TP_AD]
    mov dword [TP_AD], 6
    PTEBYTE eax, TP_AD
    CHECK "write after a cached read translation still sets D", eax, PG_P | PG_RW | PG_US | PG_A | PG_D
    ; faulting accesses set nothing
    SETPTE TP_SUP, TP_SUP | PG_P | PG_RW
    TRY
    TO_RING3
    mov eax, [TP_SUP]
    TO_RING0
    ENDTRY
    EXPECT_FAULT "(A/D) user read of a supervisor page faults", V_PF, PF_P | PF_U
    PTEBYTE eax, TP_SUP
    CHECK "protection fault: PTE.A not set", eax, PG_P | PG_RW
    SETPTE TP_URO, TP_URO | PG_P | PG_US
    TRY
    TO_RING3
    mov dword [TP_URO], 1
    TO_RING0
    ENDTRY
    EXPECT_FAULT "(A/D) user write of a read-only page faults", V_PF, PF_P | PF_W | PF_U
    PTEBYTE eax, TP_URO
    CHECK "write-protection fault: PTE.A and D not set", eax, PG_P | PG_US
    mov dword [PDE(LIN_UPD)], (PT_BASE + 0x2000) | PG_P | PG_RW | PG_US
    SETPTE LIN_UPD, 0
    mov eax, cr3
    mov cr3, eax
    TRY
    mov eax, [LIN_UPD]
    ENDTRY
    EXPECT_FAULT "(A/D) read through a not-present PTE faults", V_PF, 0
    movzx eax, byte [PDE(LIN_UPD)]
    CHECK "not-present PTE: PDE.A not set", eax, PG_P | PG_RW | PG_US
    SETPTE LIN_UPD, LIN_UPD | PG_P | PG_RW | PG_US
    mov dword [PDE(LIN_UPD)], (PT_BASE + 0x2000) | PG_RW | PG_US
    mov eax, cr3
    mov cr3, eax
    TRY
    mov eax, [LIN_UPD + 4]
    ENDTRY
    EXPECT_FAULT "read through a not-present PDE: #PF(0)", V_PF, 0
    CHECK "not-present PDE: CR2", [rec_cr2], LIN_UPD + 4
    PTEBYTE eax, LIN_UPD
    CHECK "not-present PDE: PTE untouched", eax, PG_P | PG_RW | PG_US

    ; ================================================================ CR0.WP
    SETPTE TP_URO, TP_URO | PG_P | PG_US
    SETPTE TP_SRO, TP_SRO | PG_P
    TRY
    mov dword [TP_URO + 0x10], 0x1234
    mov dword [TP_SRO + 0x10], 0x5678
    ENDTRY
    EXPECT_NO_FAULT "WP=0: supervisor writes to read-only user and supervisor pages"
    CHECK "WP=0: the write landed", [TP_SRO + 0x10], 0x5678
    mov eax, cr0
    or eax, CR0_WP
    mov cr0, eax
    mov eax, cr3
    mov cr3, eax
    TRY
.w1: mov dword [TP_URO + 0x10], 1
    ENDTRY
    EXPECT_FAULT "WP=1: supervisor write to a read-only user page: #PF(P|W)", V_PF, PF_P | PF_W, .w1
    TRY
    mov dword [TP_SRO + 0x10], 1
    ENDTRY
    EXPECT_FAULT "WP=1: supervisor write to a read-only supervisor page: #PF(P|W)", V_PF, PF_P | PF_W
    CHECK "WP=1: memory unchanged", [TP_SRO + 0x10], 0x5678
    TRY
    mov eax, [TP_SRO + 0x10]
    ENDTRY
    EXPECT_NO_FAULT "WP=1: supervisor read of a read-only page"
    mov eax, cr0
    and eax, ~CR0_WP
    mov cr0, eax
    mov eax, cr3
    mov cr3, eax

    ; ================================================================ U/S and R/W from PDE and PTE
%macro UPD 4                ; name, PDE flags, PTE flags, expected vector/errcode for a user write
    mov dword [PDE(LIN_UPD)], (PT_BASE + 0x2000) | (%2)
    mov dword [PTE(LIN_UPD)], LIN_UPD | (%3)
    mov eax, cr3
    mov cr3, eax
    TRY
    TO_RING3
    mov dword [LIN_UPD + 0x40], 1
    TO_RING0
    ENDTRY
  %if %4 == NOFAULT
    EXPECT_NO_FAULT %1
  %else
    EXPECT_FAULT %1, V_PF, %4
  %endif
%endmacro
    UPD "user write: PDE U/S=0, PTE U/S=1: #PF(P|W|U)", PG_P | PG_RW, PG_P | PG_RW | PG_US, PF_P | PF_W | PF_U
    UPD "user write: PDE U/S=1, PTE U/S=0: #PF(P|W|U)", PG_P | PG_RW | PG_US, PG_P | PG_RW, PF_P | PF_W | PF_U
    UPD "user write: PDE R/W=0, PTE R/W=1: #PF(P|W|U)", PG_P | PG_US, PG_P | PG_RW | PG_US, PF_P | PF_W | PF_U
    UPD "user write: PDE R/W=1, PTE R/W=0: #PF(P|W|U)", PG_P | PG_RW | PG_US, PG_P | PG_US, PF_P | PF_W | PF_U
    UPD "user write: both U/S=1 R/W=1", PG_P | PG_RW | PG_US, PG_P | PG_RW | PG_US, NOFAULT
    mov dword [PDE(LIN_UPD)], (PT_BASE + 0x2000) | PG_P | PG_US
    mov dword [PTE(LIN_UPD)], LIN_UPD | PG_P | PG_RW | PG_US
    mov eax, cr3
    mov cr3, eax
    TRY
    mov dword [LIN_UPD + 0x40], 2
    ENDTRY
    EXPECT_NO_FAULT "WP=0: supervisor write through a read-only PDE"
    mov dword [PDE(LIN_UPD)], (PT_BASE + 0x2000) | PG_P | PG_RW | PG_US

    ; ================================================================ 4 MiB pages
    mov dword [0x401234], 0x4444ABCD
    mov eax, cr4
    or eax, CR4_PSE
    mov cr4, eax
    mov dword [PDE(LIN_4M)], 0x400000 | PG_PS | PG_P | PG_RW | PG_US
    mov eax, cr3
    mov cr3, eax
    mov eax, [LIN_4M + 0x1234]
    CHECK "4 MiB page: translation (linear 16M+x → physical 4M+x)", eax, 0x4444ABCD
    movzx eax, byte [PDE(LIN_4M)]
    CHECK "4 MiB page: read sets PDE.A", eax, PG_PS | PG_P | PG_RW | PG_US | PG_A
    mov dword [LIN_4M + 0x3FFFFC], 7
    movzx eax, byte [PDE(LIN_4M)]
    CHECK "4 MiB page: write sets PDE.D", eax, PG_PS | PG_P | PG_RW | PG_US | PG_A | PG_D
    CHECK "4 MiB page: write landed at physical 8M-4", [0x7FFFFC], 7
    mov dword [PDE(LIN_4M)], 0x400000 | PG_PS | PG_P | PG_RW
    mov eax, cr3
    mov cr3, eax
    TRY
    TO_RING3
    mov eax, [LIN_4M]
    TO_RING0
    ENDTRY
    EXPECT_FAULT "4 MiB supervisor page from ring 3: #PF(P|U)", V_PF, PF_P | PF_U
    mov dword [PDE(LIN_4M)], 0x400000 | (1 << 21) | PG_PS | PG_P | PG_RW | PG_US
    mov eax, cr3
    mov cr3, eax
    TRY
    mov eax, [LIN_4M + 8]
    ENDTRY
    EXPECT_FAULT "4 MiB PDE with reserved bit 21: #PF(P|RSVD)", V_PF, PF_P | PF_RSVD
    CHECK "reserved-bit fault: CR2", [rec_cr2], LIN_4M + 8
    TRY
    mov dword [LIN_4M + 8], 0
    ENDTRY
    EXPECT_FAULT "4 MiB PDE with reserved bit 21, write: #PF(P|W|RSVD)", V_PF, PF_P | PF_W | PF_RSVD
    movzx eax, byte [PDE(LIN_4M)]
    CHECK "reserved-bit fault: PDE.A not set", eax, PG_PS | PG_P | PG_RW | PG_US
    mov dword [PDE(LIN_4M)], 0
    mov eax, cr4
    and eax, ~CR4_PSE
    mov cr4, eax

    ; with CR4.PSE=0 the PS bit of a PDE is ignored: the PDE points to a page table
    mov dword [0x400000], PHYS_A | PG_P | PG_RW | PG_US   ; PTE 0 of a table at 4 MiB
    mov dword [PDE(LIN_4M)], 0x400000 | PG_PS | PG_P | PG_RW | PG_US
    mov eax, cr3
    mov cr3, eax
    mov eax, [LIN_4M]
    CHECK "CR4.PSE=0: PDE.PS ignored (4 KiB walk through the PDE)", eax, 0xAAAA0001
    mov eax, cr4
    or eax, CR4_PSE
    mov cr4, eax
    mov eax, [LIN_4M]
    CHECK "CR4.PSE=1: the same PDE maps a 4 MiB page", eax, PHYS_A | PG_P | PG_RW | PG_US | PG_A
    mov eax, cr4
    and eax, ~CR4_PSE
    mov cr4, eax
    mov dword [PDE(LIN_4M)], 0

    ; self-modifying code through a second linear alias of the same physical page
    SETPTE TP_X, PHYS_D | PG_P | PG_RW | PG_US
    SETPTE TP_Y, PHYS_D | PG_P | PG_RW | PG_US
    mov byte [TP_X], 0xB8           ; mov eax, imm32
    mov dword [TP_X + 1], 1
    mov byte [TP_X + 5], 0xC3       ; ret
    call TP_Y
    CHECK "code run through alias Y", eax, 1
    mov dword [TP_X + 1], 2         ; modify through alias X
    call TP_Y
    CHECK "write through alias X is seen when executing through Y (physical SMC)", eax, 2

    ; ================================================================ global pages
    mov eax, cr4
    or eax, CR4_PGE
    mov cr4, eax
    SETPTE TP_G, PHYS_A | PG_G | PG_P | PG_RW
    SETPTE TP_NG, PHYS_A | PG_P | PG_RW
    mov eax, [TP_G]                 ; load both translations
    mov eax, [TP_NG]
    mov dword [PTE(TP_G)], PHYS_B | PG_G | PG_P | PG_RW
    mov dword [PTE(TP_NG)], PHYS_B | PG_P | PG_RW
    mov eax, cr3
    mov cr3, eax
    mov eax, [TP_NG]
    CHECK "CR3 reload flushes a non-global translation", eax, 0xBBBB0002
    mov eax, [TP_G]
    CHECK "CR3 reload keeps a global translation (stale PTE still used)", eax, 0xAAAA0001
    invlpg [TP_G]
    mov eax, [TP_G]
    CHECK "INVLPG drops a global translation", eax, 0xBBBB0002
    mov dword [PTE(TP_G)], PHYS_C | PG_G | PG_P | PG_RW
    mov eax, cr4
    and eax, ~CR4_PGE
    mov cr4, eax
    mov eax, [TP_G]
    CHECK "clearing CR4.PGE flushes global translations", eax, 0xCCCC0003
    mov eax, cr4
    or eax, CR4_PGE
    mov cr4, eax
    mov eax, [TP_G]
    mov dword [PTE(TP_G)], PHYS_A | PG_G | PG_P | PG_RW
    mov eax, cr4
    and eax, ~CR4_PGE
    mov cr4, eax
    or eax, CR4_PGE
    mov cr4, eax
    mov eax, [TP_G]
    CHECK "toggling CR4.PGE flushes global translations", eax, 0xAAAA0001
    mov eax, cr4
    and eax, ~CR4_PGE
    mov cr4, eax
    SETPTE TP_G, PHYS_A | PG_G | PG_P | PG_RW
    mov eax, [TP_G]
    mov dword [PTE(TP_G)], PHYS_B | PG_G | PG_P | PG_RW
    mov eax, cr3
    mov cr3, eax
    mov eax, [TP_G]
    CHECK "with CR4.PGE=0 the G bit is ignored (CR3 reload flushes)", eax, 0xBBBB0002
    ; INVLPG on a non-global page
    SETPTE TP_X, PHYS_A | PG_P | PG_RW
    mov eax, [TP_X]
    mov dword [PTE(TP_X)], PHYS_C | PG_P | PG_RW
    invlpg [TP_X]
    mov eax, [TP_X]
    CHECK "INVLPG after changing a PTE: new translation", eax, 0xCCCC0003
    TRY
    TO_RING3
    invlpg [TP_X]
    TO_RING0
    ENDTRY
    EXPECT_FAULT "INVLPG at CPL3: #GP(0)", V_GP, 0
    call paging_off

    ; ================================================================ PAE and NX
    mov eax, 0x80000001
    cpuid
    CHECKM "CPUID.80000001H:EDX.NX", edx, 1 << 20, 1 << 20
    mov eax, 1
    cpuid
    CHECKM "CPUID.1:EDX.PAE", edx, 1 << 6, 1 << 6
    ; PDPT: PDPTE0 → PAE_PD0; PD0: 2 MiB identity pages for 0-16 MiB except entry 2
    ; (4-6 MiB), which uses PAE_PT with 4 KiB identity pages
    xor eax, eax
    mov edi, PDPT
    mov ecx, 0x1000 / 4
    rep stosd
    mov edi, PAE_PD0
    mov ecx, 0x4000 / 4
    rep stosd
    mov dword [PDPT], PAE_PD0 | PG_P
    xor ecx, ecx
.pd: mov eax, ecx
    shl eax, 21
    or eax, PG_PS | PG_P | PG_RW | PG_US
    mov [PAE_PD0 + ecx * 8], eax
    inc ecx
    cmp ecx, 8
    jb .pd
    mov dword [PAE_PD0 + 2 * 8], PAE_PT | PG_P | PG_RW | PG_US
    xor ecx, ecx
.pt: mov eax, ecx
    shl eax, 12
    add eax, 0x400000 | PG_P | PG_RW | PG_US
    mov [PAE_PT + ecx * 8], eax
    inc ecx
    cmp ecx, 512
    jb .pt
    mov eax, cr4
    or eax, CR4_PAE
    mov cr4, eax
    mov eax, PDPT
    mov cr3, eax
    mov eax, cr0
    or eax, CR0_PG
    mov cr0, eax
    jmp .pae_on
.pae_on:
    mov eax, cr4
    CHECKM "PAE paging on", eax, CR4_PAE, CR4_PAE
    mov dword [0x300000], 0x2B2B2B2B
    mov eax, [0x300000]
    CHECK "PAE 2 MiB identity page read", eax, 0x2B2B2B2B
    mov al, [PAE_PD0 + 1 * 8]
    movzx eax, al
    CHECK "PAE 2 MiB page: A and D in the PDE", eax, PG_PS | PG_P | PG_RW | PG_US | PG_A | PG_D
    ; a 4 KiB PAE page remapped
    mov dword [PAEPTE(TP_X)], PHYS_B | PG_P | PG_RW | PG_US
    mov dword [PAEPTE(TP_X) + 4], 0
    invlpg [TP_X]
    mov eax, [TP_X]
    CHECK "PAE 4 KiB page translation", eax, 0xBBBB0002
    movzx eax, byte [PAEPTE(TP_X)]
    CHECK "PAE 4 KiB page: read sets PTE.A", eax, PG_P | PG_RW | PG_US | PG_A
    mov dword [PAEPTE(TP_X)], 0
    invlpg [TP_X]
    TRY
    mov eax, [TP_X + 0x20]
    ENDTRY
    EXPECT_FAULT "PAE not-present PTE: #PF(0)", V_PF, 0
    CHECK "PAE #PF CR2", [rec_cr2], TP_X + 0x20
    ; bit 63 with NXE=0 is reserved
    mov dword [PAEPTE(TP_Y)], TP_Y | PG_P | PG_RW | PG_US
    mov dword [PAEPTE(TP_Y) + 4], 0x80000000
    invlpg [TP_Y]
    TRY
    mov eax, [TP_Y]
    ENDTRY
    EXPECT_FAULT "PAE PTE bit 63 with EFER.NXE=0: #PF(P|RSVD)", V_PF, PF_P | PF_RSVD
    ; reserved physical-address bits (bit 50; MAXPHYADDR is 36 without CPUID 80000008H)
    mov dword [PAEPTE(TP_Y) + 4], 1 << (50 - 32)
    invlpg [TP_Y]
    TRY
    mov dword [TP_Y], 0
    ENDTRY
    EXPECT_FAULT "PAE PTE reserved bit 50: #PF(P|W|RSVD)", V_PF, PF_P | PF_W | PF_RSVD
    mov dword [PAEPTE(TP_Y) + 4], 0
    mov dword [PAE_PD0 + 6 * 8], 0xC00000 | (1 << 13) | PG_PS | PG_P | PG_RW | PG_US
    invlpg [0xC00000]
    TRY
    mov eax, [0xC00010]
    ENDTRY
    EXPECT_FAULT "PAE 2 MiB PDE reserved bit 13: #PF(P|RSVD)", V_PF, PF_P | PF_RSVD
    mov dword [PAE_PD0 + 6 * 8], 0xC00000 | PG_PS | PG_P | PG_RW | PG_US
    invlpg [0xC00000]
    ; EFER.NXE
    mov ecx, 0xC0000080
    rdmsr
    or eax, 1 << 11
    wrmsr
    rdmsr
    CHECKM "EFER.NXE set by WRMSR", eax, 1 << 11, 1 << 11
    mov byte [TP_Y + 0x100], 0xC3   ; ret
    mov dword [PAEPTE(TP_Y) + 4], 0x80000000
    invlpg [TP_Y]
    TRY
    mov eax, [TP_Y + 0x100]
    ENDTRY
    EXPECT_NO_FAULT "NX page: data read allowed"
    TRY
    call TP_Y + 0x100
    ENDTRY
    EXPECT_FAULT "NX page: instruction fetch: #PF(P|I/D)", V_PF, PF_P | PF_ID, TP_Y + 0x100
    CHECK "NX fetch: CR2 = target", [rec_cr2], TP_Y + 0x100
    mov dword [PAEPTE(TP_Y) + 4], 0
    invlpg [TP_Y]
    TRY
    call TP_Y + 0x100
    ENDTRY
    EXPECT_NO_FAULT "same page without NX: fetch and RET"
    mov dword [PAEPTE(TP_X)], 0
    invlpg [TP_X]
    TRY
    call TP_X
    ENDTRY
    EXPECT_FAULT "NXE=1: fetch from a not-present page: #PF(I/D)", V_PF, PF_ID
    TRY
    TO_RING3
    mov eax, [TP_X]
    TO_RING0
    ENDTRY
    EXPECT_FAULT "NXE=1: user data read, not present: #PF(U) (no I/D)", V_PF, PF_U
    mov dword [PAE_PD0 + 2 * 8 + 4], 0x80000000     ; NX in the PDE covers the page
    invlpg [TP_Y]
    TRY
    call TP_Y + 0x100
    ENDTRY
    EXPECT_FAULT "NX in the PDE: fetch: #PF(P|I/D)", V_PF, PF_P | PF_ID
    mov dword [PAE_PD0 + 2 * 8 + 4], 0
    invlpg [TP_Y]
    ; PDPTE registers: loaded on a CR3 write, not re-read from memory
    mov esi, PAE_PD0
    mov edi, PAE_PDX
    mov ecx, 1024
    rep movsd
    mov dword [PAE_PDX + 5 * 8], 0x600000 | PG_PS | PG_P | PG_RW | PG_US    ; 10-12M → 6-8M
    mov dword [0x600040], 0x66666666
    mov dword [0xA00040], 0xAAAAAAAA
    mov dword [PDPT], PAE_PDX | PG_P
    invlpg [0xA00040]
    mov eax, [0xA00040]
    CHECK "PDPTE changed in memory without a CR3 load: old PD still used", eax, 0xAAAAAAAA
    mov eax, PDPT
    mov cr3, eax
    mov eax, [0xA00040]
    CHECK "after the CR3 load: the new PDPTE is used", eax, 0x66666666
    mov dword [PDPT], PAE_PD0 | PG_P
    mov eax, PDPT
    mov cr3, eax
    ; reserved PDPTE bits: #GP(0) on the CR3 load
    mov dword [PDPT], PAE_PD0 | PG_P | (1 << 5)
    TRY
    mov eax, PDPT
    mov cr3, eax
    ENDTRY
    EXPECT_FAULT "CR3 load with a reserved PDPTE bit (5): #GP(0)", V_GP, 0
    mov dword [PDPT], PAE_PD0 | PG_P | (1 << 1)
    TRY
    mov eax, PDPT
    mov cr3, eax
    ENDTRY
    EXPECT_FAULT "CR3 load with a reserved PDPTE bit (1, R/W): #GP(0)", V_GP, 0
    mov dword [PDPT], PAE_PD0 | PG_P
    mov dword [PDPT + 3 * 8], 0x12345000 | (1 << 2)     ; not present: reserved bits ignored
    TRY
    mov eax, PDPT
    mov cr3, eax
    ENDTRY
    EXPECT_NO_FAULT "CR3 load: reserved bits of a not-present PDPTE are ignored"
    mov dword [PDPT + 3 * 8], 0
    ; back to no paging, NXE off
    call paging_off
    mov ecx, 0xC0000080
    rdmsr
    and eax, ~(1 << 11)
    wrmsr
    mov eax, cr4
    and eax, ~CR4_PAE
    mov cr4, eax
    xor eax, eax
    mov cr3, eax

    ; ================================================================ A20 (port 0x92 bit 1)
    A20_LO equ 0x60000
    A20_HI equ 0x160000             ; A20_LO | 1 MiB
    mov dword [A20_LO], 0x10101010
    mov dword [A20_HI], 0x20202020
    in al, 0x92
    movzx eax, al
    CHECKM "port 0x92: A20 enabled at power-on", eax, 2, 2
    in al, 0x92
    and al, ~3
    out 0x92, al
    in al, 0x92
    movzx eax, al
    CHECKM "port 0x92: A20 bit reads back 0", eax, 2, 0
    mov eax, [A20_HI]
    CHECK "A20 off: 1 MiB + x reads x", eax, 0x10101010
    mov dword [A20_HI + 4], 0x30303030
    CHECK "A20 off: a write to 1 MiB + x lands at x", [A20_LO + 4], 0x30303030
    in al, 0x92
    or al, 2
    out 0x92, al
    mov eax, [A20_HI]
    CHECK "A20 on again: 1 MiB + x is distinct", eax, 0x20202020
    ; with paging: A20 masks the physical address after translation
    call paging_identity
    mov dword [PTE(TP_X)], A20_HI | PG_P | PG_RW
    call paging_on
    mov eax, [TP_X]
    CHECK "A20 on, paging: page mapped to 1 MiB + x", eax, 0x20202020
    in al, 0x92
    and al, ~3
    out 0x92, al
    mov eax, [TP_X]
    CHECK "A20 off, paging: the physical address is masked (no stale TLB)", eax, 0x10101010
    in al, 0x92
    or al, 2
    out 0x92, al
    mov eax, [TP_X]
    CHECK "A20 on again, paging", eax, 0x20202020
    call paging_off

    FINISH

; #PF handler for the demand-paging checks: set P|RW|US in the PTE of CR2 and restart
h_pf_fix:
    push eax
    mov eax, cr2
    shr eax, 12
    or dword [ss:PT_BASE + eax * 4], PG_P | PG_RW | PG_US
    mov eax, cr2
    invlpg [eax]
    inc dword [ss:PF_COUNT]
    pop eax
    add esp, 4
    iretd
