//! Archive builders for tests, including what no honest tool writes: zip
//! entries with any name, type and header, and deflate streams of any
//! length made without compressing anything.

use std::io::Write;

/// One zip entry as it will be written.
pub struct ZipEntry {
    pub name: Vec<u8>,
    /// The bytes stored (already compressed when `method` is 8).
    pub data: Vec<u8>,
    pub method: u16,
    pub crc: u32,
    /// The uncompressed size the headers declare.
    pub size: u32,
    /// Unix mode (file type and permissions), stored as "made by Unix".
    pub mode: Option<u32>,
    pub flags: u16,
}

impl ZipEntry {
    /// A regular file, deflated.
    pub fn file(name: &str, content: &[u8]) -> ZipEntry {
        let mut enc =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(content).unwrap();
        ZipEntry {
            name: name.as_bytes().to_vec(),
            data: enc.finish().unwrap(),
            method: 8,
            crc: crc32fast::hash(content),
            size: content.len() as u32,
            mode: Some(0o100644),
            flags: 0,
        }
    }

    /// A regular file, stored.
    pub fn stored(name: &str, content: &[u8]) -> ZipEntry {
        ZipEntry {
            method: 0,
            data: content.to_vec(),
            ..ZipEntry::file(name, content)
        }
    }

    pub fn symlink(name: &str, target: &str) -> ZipEntry {
        ZipEntry {
            mode: Some(0o120777),
            ..ZipEntry::stored(name, target.as_bytes())
        }
    }
}

/// A zip archive of these entries, in this order.
pub fn zip(entries: &[ZipEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        let le16 = |v: &mut Vec<u8>, x: u16| v.extend_from_slice(&x.to_le_bytes());
        let le32 = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_le_bytes());
        le32(&mut out, 0x0403_4b50);
        le16(&mut out, 20);
        le16(&mut out, e.flags);
        le16(&mut out, e.method);
        le16(&mut out, 0);
        le16(&mut out, 0x21);
        le32(&mut out, e.crc);
        le32(&mut out, e.data.len() as u32);
        le32(&mut out, e.size);
        le16(&mut out, e.name.len() as u16);
        le16(&mut out, 0);
        out.extend_from_slice(&e.name);
        out.extend_from_slice(&e.data);

        le32(&mut central, 0x0201_4b50);
        le16(
            &mut central,
            if e.mode.is_some() { (3 << 8) | 20 } else { 20 },
        );
        le16(&mut central, 20);
        le16(&mut central, e.flags);
        le16(&mut central, e.method);
        le16(&mut central, 0);
        le16(&mut central, 0x21);
        le32(&mut central, e.crc);
        le32(&mut central, e.data.len() as u32);
        le32(&mut central, e.size);
        le16(&mut central, e.name.len() as u16);
        le16(&mut central, 0);
        le16(&mut central, 0);
        le16(&mut central, 0);
        le16(&mut central, 0);
        le32(&mut central, e.mode.map_or(0, |m| m << 16));
        le32(&mut central, offset);
        central.extend_from_slice(&e.name);
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&[0; 2]);
    out
}

/// A raw deflate stream of `n` zero bytes, written directly as fixed
/// Huffman codes (one literal, then 258-byte matches at distance 1), so a
/// gibibyte costs a few megabytes and no compression time.
pub fn deflate_zeros(n: u64) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        len: u32,
    }
    impl Bits {
        fn put(&mut self, value: u64, bits: u32) {
            self.acc |= value << self.len;
            self.len += bits;
            while self.len >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.len -= 8;
            }
        }
        /// Huffman codes go most significant bit first.
        fn code(&mut self, code: u32, bits: u32) {
            let mut rev = 0u64;
            for i in 0..bits {
                rev |= u64::from((code >> i) & 1) << (bits - 1 - i);
            }
            self.put(rev, bits);
        }
    }
    let mut b = Bits {
        out: Vec::with_capacity((n / 150) as usize),
        acc: 0,
        len: 0,
    };
    b.put(1, 1); // final block
    b.put(1, 2); // fixed Huffman codes
    b.code(0x30, 8); // literal 0
    let mut left = n - 1;
    while left >= 258 {
        b.code(0xC5, 8); // length 258 (symbol 285)
        b.code(0, 5); // distance 1
        left -= 258;
    }
    for _ in 0..left {
        b.code(0x30, 8);
    }
    b.code(0, 7); // end of block
    b.put(0, 7);
    b.out
}

/// One tar entry: name, type and data; written with raw headers so any
/// name gets through.
pub struct TarEntry {
    pub name: Vec<u8>,
    pub kind: tar::EntryType,
    pub data: Vec<u8>,
    pub link: Option<&'static str>,
    /// The size the header declares, when not the data's.
    pub size: Option<u64>,
}

impl TarEntry {
    pub fn file(name: &str, data: &[u8]) -> TarEntry {
        TarEntry {
            name: name.as_bytes().to_vec(),
            kind: tar::EntryType::Regular,
            data: data.to_vec(),
            link: None,
            size: None,
        }
    }
}

pub fn tar_gz(entries: &[TarEntry]) -> Vec<u8> {
    let mut raw = Vec::new();
    for e in entries {
        let mut header = tar::Header::new_gnu();
        {
            let bytes = header.as_old_mut();
            bytes.name = [0; 100];
            bytes.name[..e.name.len()].copy_from_slice(&e.name);
        }
        header.set_entry_type(e.kind);
        header.set_mode(0o644);
        header.set_size(e.size.unwrap_or(e.data.len() as u64));
        if let Some(link) = e.link {
            header.set_link_name(link).unwrap();
        }
        header.set_cksum();
        raw.extend_from_slice(header.as_bytes());
        raw.extend_from_slice(&e.data);
        let pad = (512 - e.data.len() % 512) % 512;
        raw.extend(std::iter::repeat_n(0u8, pad));
    }
    raw.extend_from_slice(&[0; 1024]);
    gzip(&raw)
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}
