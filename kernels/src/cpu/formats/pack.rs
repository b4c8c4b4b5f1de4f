//! Two 4-bit codes per byte, low nibble first: element 2i is bits 0..4 of byte i, element
//! 2i+1 is bits 4..8.

/// Packs 4-bit codes (only the low nibble of each is kept); an odd count leaves the last
/// high nibble 0.
pub fn pack_nibbles(codes: &[u8]) -> Vec<u8> {
    codes
        .chunks(2)
        .map(|pair| {
            let low = pair[0] & 0xF;
            let high = pair.get(1).map_or(0, |code| code & 0xF);
            low | (high << 4)
        })
        .collect()
}

/// The code of element `index`, or `None` past the end of `bytes`.
pub fn unpack_nibble(bytes: &[u8], index: usize) -> Option<u8> {
    let byte = *bytes.get(index / 2)?;
    Some(if index.is_multiple_of(2) { byte & 0xF } else { byte >> 4 })
}

/// The first `count` codes (at most two per byte available).
pub fn unpack_nibbles(bytes: &[u8], count: usize) -> Vec<u8> {
    let count = count.min(bytes.len().saturating_mul(2));
    (0..count).map(|index| unpack_nibble(bytes, index).unwrap_or(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_nibble_first() {
        assert_eq!(pack_nibbles(&[0x1, 0x2, 0xF]), vec![0x21, 0x0F]);
        assert_eq!(pack_nibbles(&[0x13, 0xF4]), vec![0x43]);
        assert_eq!(unpack_nibble(&[0x21], 0), Some(1));
        assert_eq!(unpack_nibble(&[0x21], 1), Some(2));
        assert_eq!(unpack_nibble(&[0x21], 2), None);
    }

    #[test]
    fn round_trip() {
        let codes: Vec<u8> = (0..33).map(|i| (i * 7 % 16) as u8).collect();
        let packed = pack_nibbles(&codes);
        assert_eq!(packed.len(), 17);
        assert_eq!(unpack_nibbles(&packed, codes.len()), codes);
        assert_eq!(unpack_nibbles(&packed, 1000).len(), 34);
    }
}
