//! The decoder never panics, never reports a length over 15, and is a pure function of
//! the bytes it was given: decoding a prefix-extended window gives the same instruction.
#![no_main]
use libfuzzer_sys::fuzz_target;
use x86emu::cpu::decode::{decode, DecodeError};

fuzz_target!(|data: &[u8]| {
    for code32 in [false, true] {
        match decode(data, code32) {
            Ok(i) => {
                assert!((1..=15).contains(&i.len));
                assert!(i.len as usize <= data.len());
                assert_eq!(decode(&data[..i.len as usize], code32), Ok(i));
            }
            Err(DecodeError::Truncated(n)) => assert!((n as usize) >= data.len().min(15)),
            Err(_) => {}
        }
    }
});
