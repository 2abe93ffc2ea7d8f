//! FLDENV/FNSTENV/FRSTOR/FNSAVE (14/94-byte and 28/108-byte images, real-mode and
//! protected-mode layouts) and FXSAVE/FXRSTOR (512-byte image with MXCSR and XMM0-7).

use super::super::{Exec, Res};
use crate::cpu::decode::Insn;
use crate::cpu::fpu::{FpuState, F80};
use crate::cpu::state::{CR4_OSFXSR, MXCSR_MASK};
use crate::cpu::{vector, Fault};

impl Exec<'_> {
    /// Real-address or virtual-8086 mode: the environment holds linear addresses.
    fn env_real(&self) -> bool {
        let s = &self.cpu.state;
        !s.protected_mode() || s.v86_mode()
    }

    /// The environment image for `osize` (2 or 4) in the current mode.
    fn env_image(&self, osize: u8) -> Vec<u8> {
        let f = &self.cpu.state.fpu;
        let real = self.env_real();
        let (cw, sw, tw) = (f.cw, f.sw, f.tag_word());
        let lin = |sel: u16, off: u32| ((sel as u32) << 4).wrapping_add(off);
        let mut b = Vec::with_capacity(28);
        let put16 = |b: &mut Vec<u8>, v: u32| b.extend_from_slice(&(v as u16).to_le_bytes());
        let put32 = |b: &mut Vec<u8>, v: u32| b.extend_from_slice(&v.to_le_bytes());
        if osize == 4 {
            put32(&mut b, 0xFFFF_0000 | cw as u32);
            put32(&mut b, 0xFFFF_0000 | sw as u32);
            put32(&mut b, 0xFFFF_0000 | tw as u32);
            if real {
                let ip = lin(f.fcs, f.fip);
                let dp = lin(f.fds, f.fdp);
                put32(&mut b, 0xFFFF_0000 | (ip & 0xFFFF));
                put32(&mut b, ((ip >> 16) << 12) | (f.fop as u32 & 0x7FF));
                put32(&mut b, 0xFFFF_0000 | (dp & 0xFFFF));
                put32(&mut b, (dp >> 16) << 12);
            } else {
                put32(&mut b, f.fip);
                put32(&mut b, f.fcs as u32 | ((f.fop as u32 & 0x7FF) << 16));
                put32(&mut b, f.fdp);
                put32(&mut b, 0xFFFF_0000 | f.fds as u32);
            }
        } else {
            put16(&mut b, cw as u32);
            put16(&mut b, sw as u32);
            put16(&mut b, tw as u32);
            if real {
                let ip = lin(f.fcs, f.fip);
                let dp = lin(f.fds, f.fdp);
                put16(&mut b, ip);
                put16(&mut b, (((ip >> 16) & 0xF) << 12) | (f.fop as u32 & 0x7FF));
                put16(&mut b, dp);
                put16(&mut b, ((dp >> 16) & 0xF) << 12);
            } else {
                put16(&mut b, f.fip);
                put16(&mut b, f.fcs as u32);
                put16(&mut b, f.fdp);
                put16(&mut b, f.fds as u32);
            }
        }
        b
    }

    /// Load an environment image (already read from memory).
    fn env_load(&mut self, b: &[u8], osize: u8) {
        let real = self.env_real();
        let w = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as u32;
        let d = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let f = &mut self.cpu.state.fpu;
        let (cw, sw, tw);
        if osize == 4 {
            (cw, sw, tw) = (w(0), w(4), w(8));
            if real {
                f.fip = (d(12) & 0xFFFF) | ((d(16) >> 12) << 16);
                f.fop = (d(16) & 0x7FF) as u16;
                f.fdp = (d(20) & 0xFFFF) | ((d(24) >> 12) << 16);
                f.fcs = 0;
                f.fds = 0;
            } else {
                f.fip = d(12);
                f.fcs = w(16) as u16;
                f.fop = (w(18) & 0x7FF) as u16;
                f.fdp = d(20);
                f.fds = w(24) as u16;
            }
        } else {
            (cw, sw, tw) = (w(0), w(2), w(4));
            if real {
                f.fip = w(6) | ((w(8) >> 12) << 16);
                f.fop = (w(8) & 0x7FF) as u16;
                f.fdp = w(10) | ((w(12) >> 12) << 16);
                f.fcs = 0;
                f.fds = 0;
            } else {
                f.fip = w(6);
                f.fcs = w(8) as u16;
                f.fdp = w(10);
                f.fds = w(12) as u16;
            }
        }
        f.sw = sw as u16;
        f.set_tag_word(tw as u16);
        f.set_cw(cw as u16);
        self.fpu_es_cleared();
    }

    fn env_len(osize: u8) -> u32 {
        if osize == 4 {
            28
        } else {
            14
        }
    }

    /// Read `len` bytes at seg:off (every access checked).
    fn mem_read_vec(&mut self, seg: u8, off: u32, len: u32, align: u32) -> Res<Vec<u8>> {
        let l = self.lin(seg, off, len.min(255) as u8, false)?;
        self.x87_align(l, align)?;
        let mut v = Vec::with_capacity(len as usize);
        let mut k = 0;
        while k < len {
            let n = (len - k).min(4) as u8;
            let x = self.read_mem(seg, off.wrapping_add(k), n)?;
            v.extend_from_slice(&x.to_le_bytes()[..n as usize]);
            k += n as u32;
        }
        Ok(v)
    }

    /// Write `bytes` at seg:off after checking the whole destination.
    fn mem_write_vec(&mut self, seg: u8, off: u32, bytes: &[u8], align: u32) -> Res<()> {
        for (k, c) in bytes.chunks(252).enumerate() {
            self.probe_write(seg, off.wrapping_add(252 * k as u32), c.len() as u8)?;
        }
        let l = self.lin(seg, off, 1, true)?;
        self.x87_align(l, align)?;
        for (k, c) in bytes.chunks(4).enumerate() {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            self.write_mem(
                seg,
                off.wrapping_add(4 * k as u32),
                c.len() as u8,
                u32::from_le_bytes(w),
            )?;
        }
        Ok(())
    }

    pub(super) fn fldenv(&mut self, i: &Insn) -> Res<()> {
        let ea = self.ea(i);
        let b = self.mem_read_vec(i.seg, ea, Self::env_len(i.osize), i.osize as u32)?;
        self.env_load(&b, i.osize);
        Ok(())
    }

    /// FNSTENV: store the environment, then mask every exception. ES follows the masks,
    /// so a pending exception is no longer pending (as the host x87 does).
    pub(super) fn fnstenv(&mut self, i: &Insn) -> Res<()> {
        let ea = self.ea(i);
        let b = self.env_image(i.osize);
        self.mem_write_vec(i.seg, ea, &b, i.osize as u32)?;
        let cw = self.cpu.state.fpu.cw | 0x3F;
        self.cpu.state.fpu.set_cw(cw);
        self.fpu_es_cleared();
        Ok(())
    }

    pub(super) fn frstor(&mut self, i: &Insn) -> Res<()> {
        let ea = self.ea(i);
        let n = Self::env_len(i.osize);
        let b = self.mem_read_vec(i.seg, ea, n + 80, i.osize as u32)?;
        self.env_load(&b[..n as usize], i.osize);
        let f = &mut self.cpu.state.fpu;
        for k in 0..8u8 {
            let o = n as usize + 10 * k as usize;
            let v = F80::from_bytes(b[o..o + 10].try_into().expect("10 bytes"));
            let p = f.phys(k);
            f.se[p] = v.se;
            f.sig[p] = v.sig;
        }
        Ok(())
    }

    /// FNSAVE: environment and ST(0)..ST(7), then FNINIT.
    pub(super) fn fnsave(&mut self, i: &Insn) -> Res<()> {
        let ea = self.ea(i);
        let mut b = self.env_image(i.osize);
        let f = &self.cpu.state.fpu;
        for k in 0..8 {
            b.extend_from_slice(&f.st(k).to_bytes());
        }
        self.mem_write_vec(i.seg, ea, &b, i.osize as u32)?;
        self.cpu.state.fpu.init();
        self.fpu_es_cleared();
        Ok(())
    }

    /// CR0 checks of FXSAVE/FXRSTOR (#UD with EM, #NM with TS) and 16-byte alignment.
    fn fx_check(&mut self, i: &Insn) -> Res<u32> {
        let cr0 = self.cpu.state.cr0;
        if cr0 & crate::cpu::state::CR0_EM != 0 {
            return Err(Fault::ex(vector::UD));
        }
        if cr0 & crate::cpu::state::CR0_TS != 0 {
            return Err(Fault::ex(vector::NM));
        }
        let ea = self.ea(i);
        let lin = self.cpu.state.seg[i.seg as usize].base.wrapping_add(ea);
        if lin & 15 != 0 {
            return Err(Fault::gp(0));
        }
        Ok(ea)
    }

    /// FXSAVE m512 (0F AE /0): the x87/MMX part (bytes 0-23, 32-159) and, with
    /// CR4.OSFXSR = 1, MXCSR (24), MXCSR_MASK (28) and XMM0-7 (160-287). The SDM leaves
    /// saving the SSE part with OSFXSR = 0 to the implementation; this model then leaves
    /// those bytes unchanged (as Bochs and QEMU do). Bytes 288-511 (reserved and
    /// software-available) are never written, as on the P4 in 32-bit mode; the whole
    /// 512 bytes must be writable.
    pub(super) fn fxsave(&mut self, i: &Insn) -> Res<()> {
        let ea = self.fx_check(i)?;
        for k in 0..4u32 {
            self.probe_write(i.seg, ea.wrapping_add(128 * k), 128)?;
        }
        let f: &FpuState = &self.cpu.state.fpu;
        let mut b = vec![0u8; 288];
        b[0..2].copy_from_slice(&f.cw.to_le_bytes());
        b[2..4].copy_from_slice(&f.sw.to_le_bytes());
        b[4] = f.valid;
        b[6..8].copy_from_slice(&(f.fop & 0x7FF).to_le_bytes());
        b[8..12].copy_from_slice(&f.fip.to_le_bytes());
        b[12..14].copy_from_slice(&f.fcs.to_le_bytes());
        b[16..20].copy_from_slice(&f.fdp.to_le_bytes());
        b[20..22].copy_from_slice(&f.fds.to_le_bytes());
        for k in 0..8u8 {
            let o = 32 + 16 * k as usize;
            b[o..o + 10].copy_from_slice(&f.st(k).to_bytes());
        }
        if self.cpu.state.cr4 & CR4_OSFXSR == 0 {
            self.mem_write_vec(i.seg, ea, &b[..24], 16)?;
            return self.mem_write_vec(i.seg, ea.wrapping_add(32), &b[32..160], 16);
        }
        let sse = &self.cpu.state.sse;
        b[24..28].copy_from_slice(&sse.mxcsr.to_le_bytes());
        b[28..32].copy_from_slice(&MXCSR_MASK.to_le_bytes());
        for (k, x) in sse.xmm.iter().enumerate() {
            b[160 + 16 * k..176 + 16 * k].copy_from_slice(x);
        }
        self.mem_write_vec(i.seg, ea, &b, 16)
    }

    /// FXRSTOR m512 (0F AE /1). With CR4.OSFXSR = 1 it also loads MXCSR (#GP(0), with
    /// nothing loaded, if a bit outside MXCSR_MASK is set) and XMM0-7; with OSFXSR = 0
    /// those fields are ignored (see [`Self::fxsave`]).
    pub(super) fn fxrstor(&mut self, i: &Insn) -> Res<()> {
        let ea = self.fx_check(i)?;
        let b = self.mem_read_vec(i.seg, ea, 512, 16)?;
        let w = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        let d = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        if self.cpu.state.cr4 & CR4_OSFXSR != 0 {
            let mxcsr = d(24);
            if mxcsr & !MXCSR_MASK != 0 {
                return Err(Fault::gp(0));
            }
            let sse = &mut self.cpu.state.sse;
            sse.mxcsr = mxcsr;
            for (k, x) in sse.xmm.iter_mut().enumerate() {
                x.copy_from_slice(&b[160 + 16 * k..176 + 16 * k]);
            }
        }
        let f = &mut self.cpu.state.fpu;
        f.sw = w(2);
        f.valid = b[4];
        f.fop = w(6) & 0x7FF;
        f.fip = d(8);
        f.fcs = w(12);
        f.fdp = d(16);
        f.fds = w(20);
        for k in 0..8u8 {
            let o = 32 + 16 * k as usize;
            let v = F80::from_bytes(b[o..o + 10].try_into().expect("10 bytes"));
            let p = f.phys(k);
            f.se[p] = v.se;
            f.sig[p] = v.sig;
        }
        f.set_cw(w(0));
        self.fpu_es_cleared();
        Ok(())
    }
}
