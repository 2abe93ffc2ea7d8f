use super::*;

fn len16(b: &[u8]) -> u8 {
    decode(b, false).unwrap().len
}
fn len32(b: &[u8]) -> u8 {
    decode(b, true).unwrap().len
}

#[test]
fn lengths_16bit() {
    assert_eq!(len16(&[0x90]), 1);
    assert_eq!(len16(&[0x8B, 0x46, 0x02]), 3); // mov ax,[bp+2]
    assert_eq!(len16(&[0x8B, 0x06, 0x34, 0x12]), 4); // mov ax,[0x1234]
    assert_eq!(len16(&[0x81, 0x86, 0x00, 0x01, 0x34, 0x12]), 6);
    assert_eq!(len16(&[0x66, 0xB8, 1, 2, 3, 4]), 6); // mov eax, imm32
    assert_eq!(len16(&[0x67, 0x8B, 0x04, 0x24]), 4); // mov ax,[esp]
    assert_eq!(len16(&[0xEA, 0, 0, 0, 0xF0]), 5);
    assert_eq!(len16(&[0xC8, 0x10, 0x00, 0x01]), 4);
    assert_eq!(len16(&[0xF6, 0xC0, 0x01]), 3); // test al,1
    assert_eq!(len16(&[0xF6, 0xD0]), 2); // not al
    assert_eq!(len16(&[0x0F, 0xBA, 0xE0, 0x03]), 4); // bt ax,3
}

#[test]
fn lengths_32bit() {
    assert_eq!(len32(&[0x8B, 0x04, 0x8D, 0, 0, 0, 0]), 7); // mov eax,[ecx*4+0]
    assert_eq!(len32(&[0x8B, 0x44, 0x24, 0x08]), 4); // mov eax,[esp+8]
    assert_eq!(len32(&[0x8B, 0x05, 1, 2, 3, 4]), 6); // mov eax,[abs]
    assert_eq!(len32(&[0x66, 0x05, 1, 2]), 4); // add ax, imm16
    assert_eq!(len32(&[0xE8, 0, 0, 0, 0]), 5);
    assert_eq!(len32(&[0x0F, 0x20, 0xC0]), 3); // mov eax,cr0
    assert_eq!(len32(&[0x0F, 0x20, 0x00]), 3); // mod ignored: still a register
    assert_eq!(len32(&[0xA1, 1, 2, 3, 4]), 5);
    assert_eq!(len32(&[0x67, 0xA1, 1, 2]), 4);
}

#[test]
fn segment_defaults() {
    let i = decode(&[0x8B, 0x46, 0x02], false).unwrap();
    assert_eq!(i.seg, 2, "[bp+disp] defaults to SS");
    let i = decode(&[0x26, 0x8B, 0x46, 0x02], false).unwrap();
    assert_eq!(i.seg, 0, "ES override");
    let i = decode(&[0x8B, 0x44, 0x24, 0x08], true).unwrap();
    assert_eq!(i.seg, 2, "[esp+8] defaults to SS");
    let i = decode(&[0x8B, 0x04, 0x6D, 0, 0, 0, 0], true).unwrap();
    assert_eq!(i.seg, 3, "[ebp*2+disp32] has no base: DS");
}

#[test]
fn invalid_and_limits() {
    assert_eq!(decode(&[0x0F, 0x0B], true), Err(DecodeError::Invalid)); // UD2
    assert_eq!(decode(&[0x8D, 0xC0], true), Err(DecodeError::Invalid)); // lea eax,eax
    assert_eq!(decode(&[0xF0, 0x90], true), Err(DecodeError::Invalid)); // lock nop
    assert_eq!(decode(&[0xF0, 0x01, 0xC0], true), Err(DecodeError::Invalid)); // lock add reg
    assert!(decode(&[0xF0, 0x01, 0x00], true).is_ok()); // lock add [eax],eax
    assert_eq!(decode(&[0xFF, 0xF8], true), Err(DecodeError::Invalid)); // FF /7
    let mut long = vec![0x66u8; 14];
    long.push(0x90);
    assert_eq!(decode(&long, true).unwrap().len, 15);
    let mut too_long = vec![0x66u8; 15];
    too_long.push(0x90);
    assert_eq!(decode(&too_long, true), Err(DecodeError::TooLong));
    assert_eq!(decode(&[0x8B], true), Err(DecodeError::Truncated(1)));
    assert_eq!(decode(&[0xB8, 1, 2], true), Err(DecodeError::Truncated(3)));
}
