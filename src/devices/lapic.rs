//! The local APIC of the single processor (xAPIC, version 0x14, six LVT entries), as
//! Linux 6.1 i386 and SeaBIOS program it.
//!
//! # What the board does with it
//!
//! - MMIO: the 4 KiB page at [`LocalApic::mmio_base`] (from IA32_APIC_BASE, default
//!   0xFEE00000) goes to [`LocalApic::mmio_read`] / [`LocalApic::mmio_write`] with the
//!   offset inside the page. Registers are 32 bits wide at 16-byte spacing; any other
//!   size or an offset that is not 16-byte aligned reads 0 and writes are ignored. An
//!   aligned access to a reserved register reads 0 and logs "illegal register address"
//!   in the ESR (as P6 and later do).
//! - IA32_APIC_BASE (MSR 0x1B): [`LocalApic::base_msr`] / [`LocalApic::set_base_msr`].
//!   Bit 8 (BSP) is read-only and set; bit 11 is the global enable. Clearing bit 11
//!   returns the APIC to its power-on register state (SDM 10.4.3 allows this); setting
//!   it again re-enables the APIC (xAPIC behaviour; a P6 would need a RESET).
//! - Interrupts in: [`LocalApic::accept`] (a fixed vector, edge or level), or
//!   [`LocalApic::receive`] with an [`ApicMessage`] from the IOAPIC (destination
//!   matched against ID/LDR/DFR, delivery mode applied). [`LocalApic::set_lint`] drives
//!   the LINT0/LINT1 pins.
//! - To the CPU: [`LocalApic::has_interrupt`] (the INTR condition) and
//!   [`LocalApic::acknowledge`] (the INTA cycle: IRR → ISR, or the spurious vector).
//!   [`LocalApic::take_nmi`] / [`LocalApic::take_init`] report NMI and INIT delivered to
//!   this CPU (self-IPI, LVT in NMI/INIT mode, IOAPIC message). SMI and start-up are
//!   dropped (no SMM; the one processor is never waiting for SIPI).
//! - Legacy PIC path: [`LocalApic::lint0_extint`] says whether the 8259's INTR reaches
//!   the CPU (APIC globally or software disabled, or LVT LINT0 unmasked in ExtINT mode:
//!   the MP specification's virtual wire). The vector then comes from the PIC's INTA.
//!   Recommended order (as QEMU): an APIC interrupt first, then the PIC through LINT0.
//! - EOI of a level-triggered vector: [`LocalApic::take_eoi_broadcasts`] lists the
//!   vectors to pass to `IoApic::eoi`.
//! - Timer: [`LocalApic::next_deadline`] (an instruction count) and
//!   [`LocalApic::advance`], like the port devices.
//!
//! # Model
//!
//! - Timer: the counter decrements once every `divisor` bus clocks, the bus clock
//!   (`bus_hz`, a constructor argument; 100 MHz is a good default, see [`DEFAULT_BUS_HZ`])
//!   being derived from the virtual clock in integer arithmetic. One-shot and periodic
//!   modes; TSC-deadline mode is not implemented (bit 18 reads 0; CPUID does not
//!   advertise it). The current count is computed from the time of the read. A periodic
//!   timer reloads when the count reaches 0 (period = initial count × divisor bus
//!   clocks). Changing the divider or the mode keeps the current count and phase
//!   continuous. Expirations while the LVT entry is masked are lost, as on hardware.
//! - Delivery is instantaneous: the delivery-status bits of the LVT entries and of the
//!   ICR always read 0 (idle).
//! - ICR: fixed, lowest-priority, NMI and INIT IPIs whose destination (shorthand, or the
//!   physical/logical destination field) includes this APIC are delivered to it; all
//!   other destinations are accepted and dropped (there is no other processor). INIT
//!   level de-assert, SMI, start-up and ExtINT IPIs are dropped.
//! - Fixed interrupts accepted while the APIC is software disabled are held in the IRR
//!   (as QEMU does) and become deliverable when it is enabled again; while the APIC is
//!   globally disabled nothing is accepted.
//! - Thermal and performance-counter LVT entries are plain registers: there is no
//!   thermal sensor and no performance counter, so they never fire.
//! - No x2APIC, no directed EOI (SVR bit 12 is reserved, version bit 24 clear).

use serde::{Deserialize, Serialize};

use super::Time;

/// Default IA32_APIC_BASE physical base.
pub const DEFAULT_BASE: u32 = 0xFEE0_0000;
/// A plausible APIC bus / timer clock (Linux calibrates it, so any value works).
pub const DEFAULT_BUS_HZ: u64 = 100_000_000;
/// The version register: version 0x14 (integrated xAPIC), max LVT entry 5.
pub const VERSION: u32 = 0x0005_0014;

const MSR_BSP: u64 = 1 << 8;
const MSR_ENABLE: u64 = 1 << 11;
/// Base bits 12-35 (36-bit physical addresses on P6).
const MSR_BASE_MASK: u64 = 0xF_FFFF_F000;

const SVR_ENABLE: u32 = 1 << 8;
/// Writable SVR bits: vector, software enable, focus processor checking.
const SVR_WRITABLE: u32 = 0x3FF;

const LVT_MASKED: u32 = 1 << 16;
const LVT_REMOTE_IRR: u32 = 1 << 14;
const LVT_LEVEL: u32 = 1 << 15;
const LVT_ACTIVE_LOW: u32 = 1 << 13;
const LVT_PERIODIC: u32 = 1 << 17;

/// LVT indices (register offset 0x320 + 0x10 * index).
pub const LVT_TIMER: usize = 0;
pub const LVT_THERMAL: usize = 1;
pub const LVT_PERF: usize = 2;
pub const LVT_LINT0: usize = 3;
pub const LVT_LINT1: usize = 4;
pub const LVT_ERROR: usize = 5;
/// Writable bits of each LVT entry.
const LVT_WRITABLE: [u32; 6] = [
    0x0003_00FF, // timer: vector, mask, periodic (TSC-deadline bit 18 not implemented)
    0x0001_07FF, // thermal: vector, delivery mode, mask
    0x0001_07FF, // performance counters
    0x0001_A7FF, // LINT0: vector, delivery mode, polarity, trigger, mask
    0x0001_A7FF, // LINT1
    0x0001_00FF, // error: vector, mask
];

/// ESR bits.
pub const ESR_SEND_ILLEGAL_VECTOR: u32 = 1 << 5;
pub const ESR_RECV_ILLEGAL_VECTOR: u32 = 1 << 6;
pub const ESR_ILLEGAL_REGISTER: u32 = 1 << 7;

/// Writable ICR low bits: vector, delivery mode, destination mode, level, trigger mode,
/// destination shorthand (bit 12, delivery status, reads 0).
const ICR_LO_WRITABLE: u32 = 0x000C_CFFF;

/// Delivery mode of an interrupt message, an LVT entry or an IOAPIC redirection entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryMode {
    Fixed,
    LowestPriority,
    Smi,
    Nmi,
    Init,
    StartUp,
    ExtInt,
    /// The reserved encoding 011.
    Reserved,
}

impl DeliveryMode {
    /// Decodes the 3-bit field at bits 8-10 of `reg`.
    pub fn from_reg(reg: u32) -> DeliveryMode {
        match (reg >> 8) & 7 {
            0 => DeliveryMode::Fixed,
            1 => DeliveryMode::LowestPriority,
            2 => DeliveryMode::Smi,
            4 => DeliveryMode::Nmi,
            5 => DeliveryMode::Init,
            6 => DeliveryMode::StartUp,
            7 => DeliveryMode::ExtInt,
            _ => DeliveryMode::Reserved,
        }
    }
}

/// An interrupt message on the APIC bus (from the IOAPIC to the local APIC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApicMessage {
    pub vector: u8,
    pub mode: DeliveryMode,
    /// Level-triggered (the local APIC sets the TMR bit and broadcasts its EOI).
    pub level: bool,
    /// The destination field (APIC ID, or a logical destination).
    pub dest: u8,
    /// Logical destination mode.
    pub logical: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalApic {
    /// APIC timer input clock (configuration, kept with the state it governs).
    bus_hz: u64,
    /// IA32_APIC_BASE.
    base: u64,
    /// The hardware APIC ID (restored by RESET; the guest may rewrite `id`).
    config_id: u8,
    id: u8,
    tpr: u8,
    ldr: u32,
    dfr: u32,
    svr: u32,
    isr: [u32; 8],
    tmr: [u32; 8],
    irr: [u32; 8],
    /// The ESR as the guest reads it (latched by the last ESR write).
    esr: u32,
    /// Errors detected since the last ESR write.
    esr_pending: u32,
    icr_lo: u32,
    icr_hi: u32,
    lvt: [u32; 6],
    timer_initial: u32,
    timer_divide: u32,
    /// Bus-clock tick from which the counter counts (the last start or rebase).
    timer_start: u64,
    /// Counts already done at `timer_start` (kept across divider and mode changes).
    timer_offset: u64,
    /// Counting (an initial count was written and a one-shot has not yet expired).
    timer_active: bool,
    /// Periodic expirations already processed since `timer_start`.
    timer_fired: u64,
    /// Instruction count of the next timer interrupt (None: stopped or masked).
    timer_deadline: Option<u64>,
    /// Input levels of the LINT0/LINT1 pins (wires; kept across reset).
    lint_level: [bool; 2],
    nmi_pending: bool,
    init_pending: bool,
    eoi_broadcasts: Vec<u8>,
}

fn highest_bit(regs: &[u32; 8]) -> Option<u8> {
    (0..8)
        .rev()
        .find(|&i| regs[i] != 0)
        .map(|i| (i * 32 + 31 - regs[i].leading_zeros() as usize) as u8)
}

fn set_bit(regs: &mut [u32; 8], v: u8) {
    regs[v as usize / 32] |= 1 << (v % 32);
}

fn clear_bit(regs: &mut [u32; 8], v: u8) {
    regs[v as usize / 32] &= !(1 << (v % 32));
}

fn test_bit(regs: &[u32; 8], v: u8) -> bool {
    regs[v as usize / 32] & (1 << (v % 32)) != 0
}

impl LocalApic {
    /// The bootstrap processor's local APIC with ID `apic_id`; its timer counts on a
    /// `bus_hz` clock (at least 1 Hz).
    pub fn new(apic_id: u8, bus_hz: u64) -> LocalApic {
        let mut a = LocalApic {
            bus_hz: bus_hz.max(1),
            base: DEFAULT_BASE as u64 | MSR_BSP | MSR_ENABLE,
            config_id: apic_id,
            id: apic_id,
            tpr: 0,
            ldr: 0,
            dfr: 0,
            svr: 0,
            isr: [0; 8],
            tmr: [0; 8],
            irr: [0; 8],
            esr: 0,
            esr_pending: 0,
            icr_lo: 0,
            icr_hi: 0,
            lvt: [0; 6],
            timer_initial: 0,
            timer_divide: 0,
            timer_start: 0,
            timer_offset: 0,
            timer_active: false,
            timer_fired: 0,
            timer_deadline: None,
            lint_level: [false; 2],
            nmi_pending: false,
            init_pending: false,
            eoi_broadcasts: Vec::new(),
        };
        a.reset();
        a
    }

    /// Power-on / RESET: IA32_APIC_BASE back to its default (enabled, BSP), the
    /// hardware APIC ID and every register to its reset value.
    pub fn reset(&mut self) {
        self.base = DEFAULT_BASE as u64 | MSR_BSP | MSR_ENABLE;
        self.id = self.config_id;
        self.init_reset();
        self.nmi_pending = false;
        self.init_pending = false;
    }

    /// The state after an INIT (SDM 10.4.7.3): like RESET but the APIC ID and
    /// IA32_APIC_BASE are kept.
    pub fn init_reset(&mut self) {
        self.tpr = 0;
        self.ldr = 0;
        self.dfr = 0xFFFF_FFFF;
        self.svr = 0xFF;
        self.isr = [0; 8];
        self.tmr = [0; 8];
        self.irr = [0; 8];
        self.esr = 0;
        self.esr_pending = 0;
        self.icr_lo = 0;
        self.icr_hi = 0;
        self.lvt = [LVT_MASKED; 6];
        self.timer_initial = 0;
        self.timer_divide = 0;
        self.timer_start = 0;
        self.timer_offset = 0;
        self.timer_active = false;
        self.timer_fired = 0;
        self.timer_deadline = None;
        self.eoi_broadcasts.clear();
    }

    pub fn id(&self) -> u8 {
        self.id
    }

    pub fn bus_hz(&self) -> u64 {
        self.bus_hz
    }

    // ---- IA32_APIC_BASE ----

    pub fn base_msr(&self) -> u64 {
        self.base
    }

    /// WRMSR IA32_APIC_BASE. Returns false (and changes nothing) when reserved bits
    /// (0-7, 9, 10, 36-63) are set: the CPU raises #GP. The BSP bit is read-only.
    pub fn set_base_msr(&mut self, v: u64) -> bool {
        if v & !(MSR_BASE_MASK | MSR_ENABLE | MSR_BSP) != 0 {
            return false;
        }
        let was_enabled = self.globally_enabled();
        self.base = (v & (MSR_BASE_MASK | MSR_ENABLE)) | (self.base & MSR_BSP);
        if was_enabled && !self.globally_enabled() {
            self.init_reset();
            self.nmi_pending = false;
            self.init_pending = false;
        }
        true
    }

    /// IA32_APIC_BASE bit 11.
    pub fn globally_enabled(&self) -> bool {
        self.base & MSR_ENABLE != 0
    }

    /// SVR bit 8 (and the global enable).
    pub fn software_enabled(&self) -> bool {
        self.globally_enabled() && self.svr & SVR_ENABLE != 0
    }

    /// The physical page the board maps to this APIC: None while globally disabled or
    /// when the base is above 4 GiB (outside this 32-bit board's address space).
    pub fn mmio_base(&self) -> Option<u32> {
        if !self.globally_enabled() {
            return None;
        }
        u32::try_from(self.base & MSR_BASE_MASK).ok()
    }

    // ---- priorities ----

    /// Processor priority (SDM 10.8.3.1).
    pub fn ppr(&self) -> u8 {
        let isrv = highest_bit(&self.isr).unwrap_or(0);
        if self.tpr >> 4 >= isrv >> 4 {
            self.tpr
        } else {
            isrv & 0xF0
        }
    }

    /// Arbitration priority (SDM 10.8.3.2, P6 definition).
    pub fn apr(&self) -> u8 {
        let isrv = highest_bit(&self.isr).unwrap_or(0) >> 4;
        let irrv = highest_bit(&self.irr).unwrap_or(0) >> 4;
        let tpr = self.tpr >> 4;
        if tpr >= irrv && tpr > isrv {
            self.tpr
        } else {
            tpr.max(isrv).max(irrv) << 4
        }
    }

    fn pending_vector(&self) -> Option<u8> {
        let v = highest_bit(&self.irr)?;
        (v & 0xF0 > self.ppr() & 0xF0).then_some(v)
    }

    // ---- interrupt acceptance and delivery to the CPU ----

    /// A fixed interrupt for this APIC (from the IOAPIC, an LVT entry or an IPI):
    /// sets the IRR bit and the TMR bit for a level-triggered one. Vectors 0-15 are
    /// illegal: they are dropped and logged in the ESR.
    pub fn accept(&mut self, vector: u8, level_trigger: bool) {
        if !self.globally_enabled() {
            return;
        }
        if vector < 16 {
            self.error(ESR_RECV_ILLEGAL_VECTOR);
            return;
        }
        set_bit(&mut self.irr, vector);
        if level_trigger {
            set_bit(&mut self.tmr, vector);
        } else {
            clear_bit(&mut self.tmr, vector);
        }
    }

    /// Whether this APIC is a target of `dest` in physical or logical mode
    /// (flat or cluster model per the DFR).
    pub fn matches_destination(&self, dest: u8, logical: bool) -> bool {
        if dest == 0xFF {
            return true;
        }
        if !logical {
            return dest == self.id;
        }
        let ldr = (self.ldr >> 24) as u8;
        match self.dfr >> 28 {
            0xF => ldr & dest != 0,
            0x0 => {
                let cluster = dest >> 4;
                (cluster == 0xF || cluster == ldr >> 4) && dest & ldr & 0xF != 0
            }
            _ => false,
        }
    }

    /// An interrupt message from the APIC bus. Returns whether this APIC took it.
    pub fn receive(&mut self, m: ApicMessage) -> bool {
        if !self.globally_enabled() || !self.matches_destination(m.dest, m.logical) {
            return false;
        }
        self.deliver_local(m.mode, m.vector, m.level)
    }

    /// Delivers an interrupt whose destination is this APIC. Returns false for modes
    /// that are dropped.
    fn deliver_local(&mut self, mode: DeliveryMode, vector: u8, level: bool) -> bool {
        match mode {
            DeliveryMode::Fixed | DeliveryMode::LowestPriority => {
                self.accept(vector, level);
                true
            }
            DeliveryMode::Nmi => {
                self.nmi_pending = true;
                true
            }
            DeliveryMode::Init => {
                self.init_pending = true;
                true
            }
            DeliveryMode::Smi
            | DeliveryMode::StartUp
            | DeliveryMode::ExtInt
            | DeliveryMode::Reserved => false,
        }
    }

    /// The CPU's INTR condition from this APIC: a pending vector whose priority class
    /// is above the PPR class, with the APIC enabled.
    pub fn has_interrupt(&self) -> bool {
        self.software_enabled() && self.pending_vector().is_some()
    }

    /// The interrupt acknowledge cycle: moves the highest deliverable IRR vector to the
    /// ISR and returns it, or returns the spurious vector when none is deliverable
    /// (the ISR is then unchanged).
    pub fn acknowledge(&mut self) -> u8 {
        match self.pending_vector().filter(|_| self.software_enabled()) {
            Some(v) => {
                clear_bit(&mut self.irr, v);
                set_bit(&mut self.isr, v);
                v
            }
            None => self.svr as u8,
        }
    }

    /// Level-triggered vectors whose EOI the IOAPIC must see (`IoApic::eoi`), oldest
    /// first.
    pub fn take_eoi_broadcasts(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.eoi_broadcasts)
    }

    /// An NMI was delivered to this processor (read and clear).
    pub fn take_nmi(&mut self) -> bool {
        std::mem::take(&mut self.nmi_pending)
    }

    /// An INIT was delivered to this processor (read and clear). The board resets the
    /// CPU to its INIT state and calls [`LocalApic::init_reset`].
    pub fn take_init(&mut self) -> bool {
        std::mem::take(&mut self.init_pending)
    }

    /// Whether the 8259's INTR output reaches the CPU (see the module notes).
    pub fn lint0_extint(&self) -> bool {
        if !self.software_enabled() {
            return true;
        }
        let l = self.lvt[LVT_LINT0];
        l & LVT_MASKED == 0 && DeliveryMode::from_reg(l) == DeliveryMode::ExtInt
    }

    /// Drives the LINT0 (`pin` 0) or LINT1 (`pin` 1) input. ExtINT mode is the board's
    /// business ([`LocalApic::lint0_extint`]); NMI, INIT and edge-triggered fixed
    /// entries deliver on the asserting edge; a level-triggered fixed LINT0 delivers
    /// while asserted and its remote IRR is clear (set on delivery, cleared by EOI).
    pub fn set_lint(&mut self, pin: u8, level: bool) {
        let i = match pin {
            0 => 0,
            1 => 1,
            _ => return,
        };
        let idx = LVT_LINT0 + i;
        let lvt = self.lvt[idx];
        let pol = lvt & LVT_ACTIVE_LOW != 0;
        let was = self.lint_level[i] != pol;
        self.lint_level[i] = level;
        let now = level != pol;
        if !self.globally_enabled() || lvt & LVT_MASKED != 0 {
            return;
        }
        if self.lint_is_level(idx) {
            self.eval_lint_level(idx);
        } else if now && !was {
            self.deliver_local(DeliveryMode::from_reg(lvt), lvt as u8, false);
        }
    }

    /// LINT0 in fixed mode with the level trigger bit (LINT1 is always edge).
    fn lint_is_level(&self, idx: usize) -> bool {
        let l = self.lvt[idx];
        idx == LVT_LINT0 && l & LVT_LEVEL != 0 && DeliveryMode::from_reg(l) == DeliveryMode::Fixed
    }

    fn eval_lint_level(&mut self, idx: usize) {
        let l = self.lvt[idx];
        let asserted = self.lint_level[idx - LVT_LINT0] != (l & LVT_ACTIVE_LOW != 0);
        if asserted && l & (LVT_MASKED | LVT_REMOTE_IRR) == 0 && self.globally_enabled() {
            self.lvt[idx] |= LVT_REMOTE_IRR;
            self.accept(l as u8, true);
        }
    }

    /// Logs an error in the ESR and raises the LVT error interrupt.
    fn error(&mut self, bit: u32) {
        self.esr_pending |= bit;
        let l = self.lvt[LVT_ERROR];
        if l & LVT_MASKED == 0 {
            let v = l as u8;
            if v < 16 {
                // Would recurse: just log it.
                self.esr_pending |= ESR_RECV_ILLEGAL_VECTOR;
            } else {
                self.accept(v, false);
            }
        }
    }

    fn eoi(&mut self) {
        let Some(v) = highest_bit(&self.isr) else {
            return;
        };
        clear_bit(&mut self.isr, v);
        if test_bit(&self.tmr, v) {
            self.eoi_broadcasts.push(v);
            // A level-triggered LINT0 with this vector is also re-armed.
            let l = self.lvt[LVT_LINT0];
            if l & LVT_REMOTE_IRR != 0 && l as u8 == v {
                self.lvt[LVT_LINT0] &= !LVT_REMOTE_IRR;
                self.eval_lint_level(LVT_LINT0);
            }
        }
    }

    // ---- timer ----

    fn divisor(&self) -> u64 {
        let d = self.timer_divide;
        let v = (d & 3) | ((d >> 1) & 4);
        1 << ((v + 1) & 7)
    }

    fn periodic(&self) -> bool {
        self.lvt[LVT_TIMER] & LVT_PERIODIC != 0
    }

    /// Bus clocks since power-on (saturating: far beyond any real run time).
    fn tick(&self, t: &Time) -> u64 {
        let ticks = t.now as u128 * self.bus_hz as u128 / t.clock.ips.max(1) as u128;
        u64::try_from(ticks).unwrap_or(u64::MAX)
    }

    /// Counter decrements since the count started (the counts done before the last
    /// rebase plus those since).
    fn counts(&self, tick: u64) -> u64 {
        self.timer_offset
            .saturating_add(tick.saturating_sub(self.timer_start) / self.divisor())
    }

    fn expirations(&self, tick: u64) -> u64 {
        if !self.timer_active {
            return 0;
        }
        let n = self.counts(tick);
        let init = self.timer_initial as u64;
        if self.periodic() {
            n / init
        } else {
            (n >= init) as u64
        }
    }

    fn current_count(&self, tick: u64) -> u32 {
        if !self.timer_active {
            return 0;
        }
        let n = self.counts(tick);
        let init = self.timer_initial as u64;
        let c = if self.periodic() {
            init - n % init
        } else {
            init.saturating_sub(n)
        };
        c as u32
    }

    /// Processes expirations up to `tick`: at most one interrupt (they collapse in the
    /// IRR anyway), none while the entry is masked.
    fn sync_timer(&mut self, tick: u64) {
        let e = self.expirations(tick);
        let done = if self.periodic() { self.timer_fired } else { 0 };
        if e <= done {
            return;
        }
        let l = self.lvt[LVT_TIMER];
        if l & LVT_MASKED == 0 && self.software_enabled() {
            self.accept(l as u8, false);
        }
        if self.periodic() {
            self.timer_fired = e;
        } else {
            self.timer_active = false;
        }
    }

    /// Counts done in the current period at `tick`. With `restart_from` it re-expresses
    /// the running counter from `tick` so that the current count stays as it is when the
    /// divider or the mode changes (call after `sync_timer`, before changing either).
    fn timer_position(&self, tick: u64) -> u64 {
        if !self.timer_active {
            return 0;
        }
        // Counts done in the current period.
        let init = self.timer_initial as u64;
        let n = self.counts(tick);
        if self.periodic() {
            n % init
        } else {
            n.min(init)
        }
    }

    fn restart_from(&mut self, tick: u64, position: u64) {
        self.timer_start = tick;
        self.timer_offset = position;
        self.timer_fired = 0;
    }

    fn update_deadline(&mut self, t: &Time) {
        self.timer_deadline = None;
        if !self.timer_active || self.lvt[LVT_TIMER] & LVT_MASKED != 0 {
            return;
        }
        let next = if self.periodic() {
            self.timer_fired + 1
        } else {
            1
        };
        let ticks = (self.timer_initial as u64)
            .saturating_mul(next)
            .saturating_sub(self.timer_offset)
            .saturating_mul(self.divisor())
            .saturating_add(self.timer_start);
        self.timer_deadline = Some(t.clock.icount_at_ticks(ticks, self.bus_hz));
    }

    /// The instruction count at which the timer interrupt is due, if any.
    pub fn next_deadline(&self) -> Option<u64> {
        self.timer_deadline
    }

    /// Processes the timer up to `t.now`.
    pub fn advance(&mut self, t: Time) {
        let tick = self.tick(&t);
        self.sync_timer(tick);
        self.update_deadline(&t);
    }

    // ---- MMIO ----

    /// A read at `offset` in the APIC page.
    pub fn mmio_read(&mut self, offset: u32, size: u8, t: Time) -> u32 {
        let offset = offset & 0xFFF;
        if size != 4 || offset & 0xF != 0 {
            return 0;
        }
        let reg = offset >> 4;
        match reg {
            0x02 => (self.id as u32) << 24,
            0x03 => VERSION,
            0x08 => self.tpr as u32,
            0x09 => self.apr() as u32,
            0x0A => self.ppr() as u32,
            0x0B | 0x0C => 0, // EOI (write-only), remote read (not supported: reads 0)
            0x0D => self.ldr,
            0x0E => self.dfr,
            0x0F => self.svr,
            0x10..=0x17 => self.isr[(reg - 0x10) as usize],
            0x18..=0x1F => self.tmr[(reg - 0x18) as usize],
            0x20..=0x27 => self.irr[(reg - 0x20) as usize],
            0x28 => self.esr,
            0x30 => self.icr_lo,
            0x31 => self.icr_hi,
            0x32..=0x37 => self.lvt[(reg - 0x32) as usize],
            0x38 => self.timer_initial,
            0x39 => {
                let tick = self.tick(&t);
                self.current_count(tick)
            }
            0x3E => self.timer_divide,
            _ => {
                self.error(ESR_ILLEGAL_REGISTER);
                0
            }
        }
    }

    /// A write at `offset` in the APIC page.
    pub fn mmio_write(&mut self, offset: u32, size: u8, value: u32, t: Time) {
        let offset = offset & 0xFFF;
        if size != 4 || offset & 0xF != 0 {
            return;
        }
        let reg = offset >> 4;
        match reg {
            0x02 => self.id = (value >> 24) as u8,
            0x03 | 0x09 | 0x0A | 0x0C | 0x10..=0x27 | 0x39 => {} // read-only
            0x08 => self.tpr = value as u8,
            0x0B => self.eoi(),
            0x0D => self.ldr = value & 0xFF00_0000,
            0x0E => self.dfr = value | 0x0FFF_FFFF,
            0x0F => self.write_svr(value, &t),
            0x28 => {
                self.esr = self.esr_pending;
                self.esr_pending = 0;
            }
            0x30 => {
                self.icr_lo = value & ICR_LO_WRITABLE;
                self.send_ipi();
            }
            0x31 => self.icr_hi = value & 0xFF00_0000,
            0x32..=0x37 => self.write_lvt((reg - 0x32) as usize, value, &t),
            0x38 => {
                let tick = self.tick(&t);
                self.sync_timer(tick);
                self.timer_initial = value;
                self.timer_active = value != 0;
                self.restart_from(tick, 0);
                self.update_deadline(&t);
            }
            0x3E => {
                let tick = self.tick(&t);
                self.sync_timer(tick);
                let pos = self.timer_position(tick);
                self.timer_divide = value & 0xB;
                self.restart_from(tick, pos);
                self.update_deadline(&t);
            }
            _ => self.error(ESR_ILLEGAL_REGISTER),
        }
    }

    fn write_svr(&mut self, value: u32, t: &Time) {
        let tick = self.tick(t);
        self.sync_timer(tick);
        self.svr = value & SVR_WRITABLE;
        if self.svr & SVR_ENABLE == 0 {
            // Software disable: every LVT entry is masked (SDM 10.4.7.2).
            for l in &mut self.lvt {
                *l |= LVT_MASKED;
            }
        }
        self.update_deadline(t);
    }

    fn write_lvt(&mut self, idx: usize, value: u32, t: &Time) {
        let mut value = value & LVT_WRITABLE[idx];
        if self.svr & SVR_ENABLE == 0 {
            value |= LVT_MASKED;
        }
        if idx == LVT_TIMER {
            let tick = self.tick(t);
            self.sync_timer(tick);
            // An expired one-shot is already stopped (by `sync_timer`) and stays so
            // until a new initial count, whatever the new mode.
            let pos = self.timer_position(tick);
            self.lvt[idx] = value;
            self.restart_from(tick, pos);
            self.update_deadline(t);
            return;
        }
        let keep = self.lvt[idx] & LVT_REMOTE_IRR;
        self.lvt[idx] = value | keep;
        if idx == LVT_LINT0 || idx == LVT_LINT1 {
            if !self.lint_is_level(idx) {
                self.lvt[idx] &= !LVT_REMOTE_IRR;
            } else {
                self.eval_lint_level(idx);
            }
        }
    }

    fn send_ipi(&mut self) {
        let lo = self.icr_lo;
        let vector = lo as u8;
        let mode = DeliveryMode::from_reg(lo);
        let level_trigger = lo & (1 << 15) != 0;
        let assert = lo & (1 << 14) != 0;
        if mode == DeliveryMode::Init && level_trigger && !assert {
            return; // INIT level de-assert: arbitration ID sync, nothing to do here
        }
        let to_self = match (lo >> 18) & 3 {
            0 => self.matches_destination((self.icr_hi >> 24) as u8, lo & (1 << 11) != 0),
            1 | 2 => true, // self, all including self
            _ => false,    // all excluding self: there is nobody else
        };
        if matches!(mode, DeliveryMode::Fixed | DeliveryMode::LowestPriority) && vector < 16 {
            self.error(ESR_SEND_ILLEGAL_VECTOR);
            return;
        }
        if to_self {
            // IPIs are edge-triggered for fixed delivery.
            self.deliver_local(mode, vector, false);
        }
    }
}
