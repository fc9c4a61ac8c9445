//! NumPy `.npz` archives (`np.savez`, `np.savez_compressed`): a ZIP file whose members are
//! `NAME.npy` arrays. Only what those writers produce is read: one disk, members stored (method 0)
//! or deflated (method 8, decoded by `miniz_oxide`), ZIP64 sizes and offsets (NumPy writes every
//! member with ZIP64 extra fields), each member's CRC-32 checked. The ZIP layout follows
//! PKWARE's APPNOTE.TXT (sections 4.3 and 4.5).

use crate::error::{Error, Result};
use std::path::Path;

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::BadNpy { path: path.to_path_buf(), reason: reason.into() }
}

fn u16_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]]) as u64)
}

fn u32_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as u64)
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8).map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
}

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as ZIP stores it.
fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (n, t) in table.iter_mut().enumerate() {
        let mut c = n as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
        *t = c;
    }
    !data.iter().fold(!0u32, |c, &b| table[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8))
}

/// One member of the archive, from its central-directory entry.
struct Member {
    name: String,
    method: u64,
    crc: u32,
    compressed: u64,
    size: u64,
    offset: u64,
}

/// The members of a ZIP archive whose bytes are `b`.
fn members(path: &Path, b: &[u8]) -> Result<Vec<Member>> {
    let not_zip = || bad(path, "not a NumPy .npz file (no ZIP end-of-central-directory record)");
    // The end record is 22 bytes plus a comment of at most 65535.
    let lowest = b.len().saturating_sub(22 + 65535);
    let eocd =
        (lowest..b.len().saturating_sub(21)).rev().find(|&k| u32_at(b, k) == Some(0x0605_4b50)).ok_or_else(not_zip)?;
    let short = || bad(path, "truncated ZIP directory");
    let mut entries = u16_at(b, eocd + 10).ok_or_else(short)?;
    let mut cd_offset = u32_at(b, eocd + 16).ok_or_else(short)?;
    if (entries == 0xFFFF || cd_offset == 0xFFFF_FFFF) && eocd >= 20 && u32_at(b, eocd - 20) == Some(0x0706_4b50) {
        let at = u64_at(b, eocd - 12).ok_or_else(short)? as usize;
        if u32_at(b, at) != Some(0x0606_4b50) {
            return Err(bad(path, "bad ZIP64 end-of-central-directory record"));
        }
        entries = u64_at(b, at + 32).ok_or_else(short)?;
        cd_offset = u64_at(b, at + 48).ok_or_else(short)?;
    }
    let mut out = Vec::new();
    let mut at = usize::try_from(cd_offset).map_err(|_| short())?;
    for _ in 0..entries {
        if u32_at(b, at) != Some(0x0201_4b50) {
            return Err(bad(path, "bad ZIP central-directory entry"));
        }
        let method = u16_at(b, at + 10).ok_or_else(short)?;
        let crc = u32_at(b, at + 16).ok_or_else(short)? as u32;
        let mut compressed = u32_at(b, at + 20).ok_or_else(short)?;
        let mut size = u32_at(b, at + 24).ok_or_else(short)?;
        let name_len = u16_at(b, at + 28).ok_or_else(short)? as usize;
        let extra_len = u16_at(b, at + 30).ok_or_else(short)? as usize;
        let comment_len = u16_at(b, at + 32).ok_or_else(short)? as usize;
        let mut offset = u32_at(b, at + 42).ok_or_else(short)?;
        let name = b.get(at + 46..at + 46 + name_len).ok_or_else(short)?;
        let name = String::from_utf8_lossy(name).into_owned();
        // ZIP64 extra field (id 1): the 8-byte values of the fields that hold 0xFFFFFFFF, in order.
        let extra = b.get(at + 46 + name_len..at + 46 + name_len + extra_len).ok_or_else(short)?;
        let mut e = 0;
        while e + 4 <= extra.len() {
            let (id, len) = (u16_at(extra, e).unwrap_or(0), u16_at(extra, e + 2).unwrap_or(0) as usize);
            if id == 1 {
                let mut f = e + 4;
                for field in [&mut size, &mut compressed, &mut offset] {
                    if *field == 0xFFFF_FFFF {
                        *field = u64_at(extra, f).ok_or_else(short)?;
                        f += 8;
                    }
                }
            }
            e += 4 + len;
        }
        out.push(Member { name, method, crc, compressed, size, offset });
        at += 46 + name_len + extra_len + comment_len;
    }
    Ok(out)
}

/// The names of the arrays in the archive (`X` for the member `X.npy`) and each member's bytes
/// (the `.npy` file it holds), uncompressed and checked against its CRC-32.
pub fn read_members(path: &Path, b: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for m in members(path, b)? {
        let short = || bad(path, format!("member '{}': truncated", m.name));
        let at = usize::try_from(m.offset).map_err(|_| short())?;
        if u32_at(b, at) != Some(0x0403_4b50) {
            return Err(bad(path, format!("member '{}': bad ZIP local header", m.name)));
        }
        let name_len = u16_at(b, at + 26).ok_or_else(short)? as usize;
        let extra_len = u16_at(b, at + 28).ok_or_else(short)? as usize;
        let start = at + 30 + name_len + extra_len;
        let len = usize::try_from(m.compressed).map_err(|_| short())?;
        let raw = b.get(start..start.checked_add(len).ok_or_else(short)?).ok_or_else(short)?;
        let data = match m.method {
            0 => raw.to_vec(),
            8 => {
                let limit = usize::try_from(m.size).map_err(|_| short())?;
                miniz_oxide::inflate::decompress_to_vec_with_limit(raw, limit)
                    .map_err(|e| bad(path, format!("member '{}': cannot inflate: {e:?}", m.name)))?
            }
            other => {
                return Err(bad(
                    path,
                    format!(
                    "member '{}': ZIP compression method {other} is not supported (np.savez or np.savez_compressed)",
                    m.name
                ),
                ))
            }
        };
        if data.len() as u64 != m.size || crc32(&data) != m.crc {
            return Err(bad(path, format!("member '{}': size or CRC-32 does not match the ZIP directory", m.name)));
        }
        let name = m.name.strip_suffix(".npy").unwrap_or(&m.name).to_string();
        out.push((name, data));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_of_a_known_string() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    /// A stored archive written here (the layout of np.savez without ZIP64) reads back.
    #[test]
    fn a_stored_archive_reads_back() {
        let (name, data) = (b"X.npy", b"hello npz");
        let mut z = Vec::new();
        let crc = crc32(data);
        z.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        z.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        z.extend_from_slice(&crc.to_le_bytes());
        z.extend_from_slice(&(data.len() as u32).to_le_bytes());
        z.extend_from_slice(&(data.len() as u32).to_le_bytes());
        z.extend_from_slice(&(name.len() as u16).to_le_bytes());
        z.extend_from_slice(&0u16.to_le_bytes());
        z.extend_from_slice(name);
        z.extend_from_slice(data);
        let cd = z.len();
        z.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        z.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        z.extend_from_slice(&crc.to_le_bytes());
        z.extend_from_slice(&(data.len() as u32).to_le_bytes());
        z.extend_from_slice(&(data.len() as u32).to_le_bytes());
        z.extend_from_slice(&(name.len() as u16).to_le_bytes());
        z.extend_from_slice(&[0; 12]);
        z.extend_from_slice(&0u32.to_le_bytes());
        z.extend_from_slice(name);
        let cd_len = z.len() - cd;
        z.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        z.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
        z.extend_from_slice(&(cd_len as u32).to_le_bytes());
        z.extend_from_slice(&(cd as u32).to_le_bytes());
        z.extend_from_slice(&[0, 0]);
        let got = read_members(Path::new("a.npz"), &z).unwrap();
        assert_eq!(got, vec![("X".to_string(), data.to_vec())]);
        // A flipped data byte fails the CRC.
        let mut broken = z.clone();
        broken[30 + name.len()] ^= 1;
        assert!(read_members(Path::new("a.npz"), &broken).unwrap_err().to_string().contains("CRC-32"));
        assert!(read_members(Path::new("a.npz"), b"not a zip").unwrap_err().to_string().contains("not a NumPy .npz"));
    }
}
