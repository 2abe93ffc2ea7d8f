//! Differential test of our decoder against iced-x86 (a decoder nobody here wrote):
//! for random byte strings in 16- and 32-bit code, every instruction that belongs to
//! our CPU model must decode to the same length, and every encoding iced rejects must
//! be rejected by us too. Instructions outside the model (SSE3, AVX, ...) must be
//! rejected by us; x87 escapes only need the right length (the FPU executes them).
//! For MMX/SSE/SSE2 forms, `required_isa` must name the extension iced lists.

use iced_x86::{Code, CpuidFeature as F, Decoder, DecoderOptions, Mnemonic};
use rand::{rngs::StdRng, Rng, SeedableRng};
use x86emu::cpu::decode::{decode, required_isa, DecodeError, Insn, Isa, Op};

const PREFIXES: [u8; 11] = [
    0x66, 0x67, 0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0xF0, 0xF2, 0xF3,
];

fn in_model(features: &[F]) -> Option<bool> {
    // Some(true): integer instruction of the model; Some(false): x87 (length only).
    let mut x87 = false;
    for f in features {
        match f {
            F::INTEL8086
            | F::INTEL186
            | F::INTEL286
            | F::INTEL386
            | F::INTEL486
            | F::CPUID
            | F::TSC
            | F::MSR
            | F::CX8
            | F::CMOV
            | F::SEP
            | F::RDPMC
            | F::MULTIBYTENOP
            | F::PAUSE
            | F::FXSR
            | F::MMX
            | F::SSE
            | F::SSE2
            | F::CLFSH => {}
            F::FPU | F::FPU287 | F::FPU387 => x87 = true,
            _ => return None,
        }
    }
    Some(!x87)
}

/// The SIMD extension iced names for an instruction, if any (the highest one listed).
fn iced_isa(features: &[F]) -> Option<Isa> {
    features
        .iter()
        .filter_map(|f| match f {
            F::MMX => Some(Isa::Mmx),
            F::SSE => Some(Isa::Sse),
            F::SSE2 | F::CLFSH => Some(Isa::Sse2),
            _ => None,
        })
        .max()
}

fn our_isa(i: &Insn) -> Option<Isa> {
    (i.op == Op::Simd).then(|| required_isa(i.ext, i.imm2 as u8, i.reg, i.is_mem()))
}

fn random_insn(rng: &mut StdRng) -> [u8; 15] {
    let mut b = [0u8; 15];
    rng.fill(&mut b[..]);
    let mut i = 0;
    while i < 4 && rng.gen_bool(0.25) {
        b[i] = PREFIXES[rng.gen_range(0..PREFIXES.len())];
        i += 1;
    }
    if rng.gen_bool(0.3) {
        b[i] = 0x0F;
    }
    b
}

fn run(bitness: u32, samples: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut compared = 0usize;
    let mut rejected_both = 0usize;
    let mut failures = Vec::new();
    for _ in 0..samples {
        let bytes = random_insn(&mut rng);
        let mut d = Decoder::new(bitness, &bytes, DecoderOptions::NONE);
        let ins = d.decode();
        let ours = decode(&bytes, bitness == 32);
        let iced_len = ins.len();
        let mut features = ins.cpuid_features().to_vec();
        if ins.code() == Code::Paddq_mm_mmm64 {
            // iced lists PADDQ mm as MMX; the SDM says SSE2 (as for PSUBQ and PMULUDQ).
            features = vec![F::SSE2];
        }
        if let Ok(i) = &ours {
            let want = iced_isa(&features);
            if let Some(have) = our_isa(i) {
                if want != Some(have) {
                    failures.push(format!(
                        "{bitness}-bit {:02X?}: iced {:?} needs {:?}, required_isa says {:?}",
                        &bytes[..iced_len.max(1)],
                        ins.code(),
                        features,
                        have
                    ));
                }
            }
        }
        let verdict = if ins.is_invalid()
            || matches!(
                ins.mnemonic(),
                Mnemonic::Ud0 | Mnemonic::Ud1 | Mnemonic::Ud2
            ) {
            None
        } else {
            in_model(&features)
        };
        match (verdict, ours) {
            (None, Err(DecodeError::Invalid)) => rejected_both += 1,
            // Hint NOPs 0F 18..1F: iced names some of them PREFETCHh (SSE); P6 runs
            // them as NOPs, which is also what a Pentium III does.
            (None, Ok(i)) if i.op == Op::NopE && i.len as usize == iced_len => compared += 1,
            (Some(_), Ok(i)) if i.len as usize == iced_len => compared += 1,
            // Newer CPUs give F3 0F BC/BD/09 new meanings (TZCNT, LZCNT, WBNOINVD);
            // a P6 ignores the F3 prefix there and executes BSF, BSR, WBINVD.
            (None, Ok(i))
                if matches!(
                    (ins.mnemonic(), i.op),
                    (Mnemonic::Tzcnt, Op::Bsf)
                        | (Mnemonic::Lzcnt, Op::Bsr)
                        | (Mnemonic::Wbnoinvd, Op::Wbinvd)
                ) && i.len as usize == iced_len =>
            {
                compared += 1
            }
            (v, o) => failures.push(format!(
                "{bitness}-bit {:02X?}: iced {:?} len {} ({:?}) vs ours {:?}",
                &bytes[..iced_len.max(1)],
                ins.code(),
                iced_len,
                v,
                o.map(|i| (i.op, i.len))
            )),
        }
    }
    for f in failures.iter().take(40) {
        eprintln!("{f}");
    }
    println!(
        "decoder-vs-iced {bitness}-bit: {compared} lengths equal, {rejected_both} rejected by both, {} disagreements",
        failures.len()
    );
    assert!(failures.is_empty(), "{} disagreements", failures.len());
}

#[test]
fn decoder_matches_iced_16bit() {
    run(16, 400_000, 16);
}

#[test]
fn decoder_matches_iced_32bit() {
    run(32, 400_000, 32);
}
