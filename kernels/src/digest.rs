//! blake3 digests of kernel buffers, as lowercase hex.
//!
//! A single buffer hashes as its little-endian bytes. Several buffers (a kernel's inputs)
//! hash as, for each buffer in order, its length in bytes as a `u64` little-endian followed
//! by its bytes, so that moving values between buffers changes the digest.

/// blake3 over the little-endian bytes of `values`.
pub fn digest_f32(values: &[f32]) -> String {
    let mut hasher = blake3::Hasher::new();
    update_f32(&mut hasher, values);
    hasher.finalize().to_hex().to_string()
}

/// One buffer of a multi-buffer digest.
#[derive(Debug, Clone, Copy)]
pub enum Buffer<'a> {
    /// 32-bit floats.
    F32(&'a [f32]),
    /// Raw bytes (packed FP4 codes, FP8 scales).
    Bytes(&'a [u8]),
}

/// blake3 over length-prefixed buffers (see the module docs).
pub fn digest_buffers(buffers: &[Buffer<'_>]) -> String {
    let mut hasher = blake3::Hasher::new();
    for buffer in buffers {
        match buffer {
            Buffer::F32(values) => {
                let len_bytes = (values.len() as u64).saturating_mul(4);
                hasher.update(&len_bytes.to_le_bytes());
                update_f32(&mut hasher, values);
            }
            Buffer::Bytes(bytes) => {
                hasher.update(&(bytes.len() as u64).to_le_bytes());
                hasher.update(bytes);
            }
        }
    }
    hasher.finalize().to_hex().to_string()
}

fn update_f32(hasher: &mut blake3::Hasher, values: &[f32]) {
    const CHUNK: usize = 1024;
    let mut bytes = [0u8; CHUNK * 4];
    for chunk in values.chunks(CHUNK) {
        for (slot, value) in bytes.chunks_exact_mut(4).zip(chunk) {
            slot.copy_from_slice(&value.to_le_bytes());
        }
        hasher.update(&bytes[..chunk.len() * 4]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_digest_is_blake3_of_le_bytes() {
        let values: Vec<f32> = (0..3000).map(|i| i as f32 * 0.25 - 7.0).collect();
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(digest_f32(&values), blake3::hash(&bytes).to_hex().to_string());
        assert_eq!(digest_f32(&[]).len(), 64);
    }

    #[test]
    fn buffer_boundaries_matter() {
        let a = digest_buffers(&[Buffer::F32(&[1.0, 2.0]), Buffer::F32(&[3.0])]);
        let b = digest_buffers(&[Buffer::F32(&[1.0]), Buffer::F32(&[2.0, 3.0])]);
        assert_ne!(a, b);
        let c = digest_buffers(&[Buffer::Bytes(&[1, 2]), Buffer::Bytes(&[])]);
        assert_ne!(c, digest_buffers(&[Buffer::Bytes(&[1, 2])]));
    }
}
