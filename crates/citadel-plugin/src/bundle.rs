//! Plugin bundles: a directory, a `.zip` or a `.tar.gz`, read into memory
//! and never written anywhere.
//!
//! An uploaded archive is hostile until proven otherwise, so reading one is
//! all limits: the archive, each file and the sum of files have a size cap,
//! the number of entries is capped, and every byte inflated is counted as
//! it comes out of the decompressor (declared sizes are read but never
//! trusted), so a zip bomb stops at the cap instead of filling memory.
//! Names must be plain relative UTF-8 paths: `../`, absolute paths,
//! backslashes and duplicates are refused, and so is every entry that is
//! not a regular file or a directory (symlinks, hard links, devices,
//! FIFOs). Zip entries are inflated here, not by the zip crate, so that the
//! counting sees every byte and only `stored` and `deflate` are accepted.
//!
//! [`pack`] writes the canonical `.tar.gz` of a bundle: entries sorted,
//! owner, mode and times fixed, so the same files always pack to the same
//! bytes (and the same digest).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, Cursor, Read, Write};
use std::path::Path;
use std::rc::Rc;

use crate::diag::{Diagnostic, codes};
use crate::manifest::MANIFEST_FILES;

/// What a bundle may weigh. The defaults suit a plugin of hand-written
/// code and small assets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The archive as uploaded.
    pub max_archive_bytes: u64,
    /// The sum of all files, inflated.
    pub max_total_bytes: u64,
    /// One file, inflated.
    pub max_file_bytes: u64,
    /// Entries (files and directories).
    pub max_entries: usize,
    /// Inflated bytes per compressed byte, checked once an entry (or a
    /// gzip stream) has inflated more than [`RATIO_FLOOR`] bytes.
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_archive_bytes: 16 << 20,
            max_total_bytes: 32 << 20,
            max_file_bytes: 4 << 20,
            max_entries: 1000,
            max_ratio: 100,
        }
    }
}

/// Below this many inflated bytes the ratio is not judged: small files of
/// repeated text compress very well and are harmless.
pub const RATIO_FLOOR: u64 = 1 << 20;

/// The longest path inside a bundle.
const MAX_NAME_BYTES: usize = 512;

/// A bundle in memory: the manifest's file name (one of
/// [`MANIFEST_FILES`]) and every file by its normalised path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub manifest: String,
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Bundle {
    /// A bundle of files already in memory (their names normalised by the
    /// caller or by a reader here). Finds the manifest at the root, or
    /// inside a single top directory holding everything (`zip -r x.zip
    /// dir` makes those), which is then stripped.
    pub fn from_files(files: BTreeMap<String, Vec<u8>>) -> Result<Bundle, Diagnostic> {
        for name in files.keys() {
            if normalize_name(name.as_bytes())? != *name {
                return Err(Diagnostic::error(
                    codes::INVALID_PATH,
                    format!("the name `{name}` is not in normal form"),
                )
                .in_file(name));
            }
        }
        if let Some(manifest) = find_manifest(&files)? {
            return Ok(Bundle { manifest, files });
        }
        let top = files
            .keys()
            .next()
            .and_then(|k| k.split_once('/'))
            .map(|(t, _)| t);
        if let Some(top) = top {
            let prefix = format!("{top}/");
            if files.keys().all(|k| k.starts_with(&prefix)) {
                let stripped: BTreeMap<String, Vec<u8>> = files
                    .iter()
                    .map(|(k, v)| (k[prefix.len()..].to_owned(), v.clone()))
                    .collect();
                if let Some(manifest) = find_manifest(&stripped)? {
                    return Ok(Bundle {
                        manifest,
                        files: stripped,
                    });
                }
            }
        }
        Err(Diagnostic::error(
            codes::MISSING_MANIFEST,
            format!(
                "the bundle has no manifest at its root (one of {})",
                MANIFEST_FILES.join(", ")
            ),
        ))
    }

    /// Reads an archive, telling a zip from a gzip by its first bytes.
    pub fn from_bytes(bytes: &[u8], limits: &Limits) -> Result<Bundle, Diagnostic> {
        if bytes.starts_with(b"PK") {
            Bundle::from_zip(bytes, limits)
        } else if bytes.starts_with(&[0x1f, 0x8b]) {
            Bundle::from_tar_gz(bytes, limits)
        } else {
            Err(Diagnostic::error(
                codes::UNKNOWN_FORMAT,
                "the bundle is neither a zip nor a gzip-compressed tar archive",
            ))
        }
    }

    /// Reads a `.zip` archive.
    pub fn from_zip(bytes: &[u8], limits: &Limits) -> Result<Bundle, Diagnostic> {
        archive_size(bytes, limits)?;
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
            Diagnostic::error(
                codes::CORRUPT_ARCHIVE,
                format!("not a readable zip archive: {e}"),
            )
        })?;
        if archive.has_duplicate_names() {
            return Err(Diagnostic::error(
                codes::DUPLICATE_ENTRY,
                "the archive holds two entries with the same name",
            ));
        }
        if archive.len() > limits.max_entries {
            return Err(too_many(archive.len(), limits));
        }
        let mut files = Files::new(limits);
        for i in 0..archive.len() {
            let mut entry = archive.by_index_raw(i).map_err(|e| {
                Diagnostic::error(
                    codes::CORRUPT_ARCHIVE,
                    format!("entry {i} cannot be read: {e}"),
                )
            })?;
            let raw = entry.name_raw().to_vec();
            let shown = String::from_utf8_lossy(&raw).into_owned();
            let is_dir = raw.ends_with(b"/");
            if let Some(mode) = entry.unix_mode() {
                let kind = mode & 0o170000;
                if kind != 0 && kind != 0o100000 && kind != 0o040000 {
                    return Err(forbidden(&shown, unix_kind(kind)));
                }
            }
            if entry.is_symlink() {
                return Err(forbidden(&shown, "a symbolic link"));
            }
            let bare = raw.strip_suffix(b"/").unwrap_or(&raw);
            if is_dir && (bare.is_empty() || bare == b".") {
                continue;
            }
            let name = normalize_name(bare).map_err(|d| d.in_file(&shown))?;
            if is_dir {
                files.dir(name)?;
                continue;
            }
            if entry.encrypted() {
                return Err(Diagnostic::error(
                    codes::UNSUPPORTED_COMPRESSION,
                    "encrypted entries are not accepted",
                )
                .in_file(name));
            }
            let deflated = match entry.compression() {
                zip::CompressionMethod::Stored => false,
                zip::CompressionMethod::Deflated => true,
                other => {
                    return Err(Diagnostic::error(
                        codes::UNSUPPORTED_COMPRESSION,
                        format!("compression {other} is not accepted (only stored and deflate)"),
                    )
                    .in_file(name));
                }
            };
            if entry.size() > limits.max_file_bytes {
                return Err(file_too_large(&name, limits));
            }
            let (declared, crc) = (entry.size(), entry.crc32());
            let consumed = Rc::new(Cell::new(0u64));
            let raw_reader = Counting {
                inner: &mut entry,
                count: consumed.clone(),
            };
            let data = if deflated {
                files.read(
                    &name,
                    flate2::read::DeflateDecoder::new(raw_reader),
                    &consumed,
                )?
            } else {
                files.read(&name, raw_reader, &consumed)?
            };
            if data.len() as u64 != declared || crc32fast::hash(&data) != crc {
                return Err(Diagnostic::error(
                    codes::CORRUPT_ARCHIVE,
                    "the entry's size or CRC-32 does not match its header",
                )
                .in_file(name));
            }
            files.add(name, data)?;
        }
        Bundle::from_files(files.finish()?)
    }

    /// Reads a `.tar.gz` archive.
    pub fn from_tar_gz(bytes: &[u8], limits: &Limits) -> Result<Bundle, Diagnostic> {
        archive_size(bytes, limits)?;
        let consumed = Rc::new(Cell::new(0u64));
        let failure: Rc<Cell<Option<Diagnostic>>> = Rc::new(Cell::new(None));
        let gz = flate2::read::GzDecoder::new(Counting {
            inner: bytes,
            count: consumed.clone(),
        });
        // Tar headers and padding are inflated too: allow them on top of
        // the files' own cap.
        let stream_cap = limits
            .max_total_bytes
            .saturating_add((limits.max_entries as u64 + 4) * 1536);
        let stream = Capped {
            inner: gz,
            inflated: 0,
            cap: stream_cap,
            ratio: limits.max_ratio,
            consumed: consumed.clone(),
            failure: failure.clone(),
        };
        let mut archive = tar::Archive::new(stream);
        let mut files = Files::new(limits);
        let fail = |e: io::Error, what: &str| {
            failure.take().unwrap_or_else(|| {
                Diagnostic::error(codes::CORRUPT_ARCHIVE, format!("{what}: {e}"))
            })
        };
        let entries = archive
            .entries()
            .map_err(|e| fail(e, "not a readable tar archive"))?;
        let mut count = 0usize;
        for entry in entries {
            let mut entry = entry.map_err(|e| fail(e, "not a readable tar archive"))?;
            count += 1;
            if count > limits.max_entries {
                return Err(too_many(count, limits));
            }
            let raw = entry.path_bytes().into_owned();
            let shown = String::from_utf8_lossy(&raw).into_owned();
            let kind = entry.header().entry_type();
            let is_dir = match kind {
                tar::EntryType::Regular | tar::EntryType::Continuous => false,
                tar::EntryType::Directory => true,
                tar::EntryType::Symlink => return Err(forbidden(&shown, "a symbolic link")),
                tar::EntryType::Link => return Err(forbidden(&shown, "a hard link")),
                tar::EntryType::Char | tar::EntryType::Block => {
                    return Err(forbidden(&shown, "a device"));
                }
                tar::EntryType::Fifo => return Err(forbidden(&shown, "a FIFO")),
                _ => return Err(forbidden(&shown, "not a regular file")),
            };
            let bare = raw.strip_suffix(b"/").unwrap_or(&raw);
            if is_dir && (bare.is_empty() || bare == b".") {
                continue;
            }
            let name = normalize_name(bare).map_err(|d| d.in_file(&shown))?;
            if is_dir {
                files.dir(name)?;
                continue;
            }
            if entry.size() > limits.max_file_bytes {
                return Err(file_too_large(&name, limits));
            }
            let data = files.read(&name, &mut entry, &consumed).map_err(|d| {
                // A cap of the stream beneath wins over the entry's error.
                failure.take().unwrap_or(d)
            })?;
            files.add(name, data)?;
        }
        Bundle::from_files(files.finish()?)
    }

    /// Reads a directory: regular files only, `.git` skipped, symlinks and
    /// special files refused.
    pub fn from_dir(dir: &Path, limits: &Limits) -> Result<Bundle, Diagnostic> {
        let mut files = Files::new(limits);
        let mut count = 0usize;
        walk(dir, "", limits, &mut files, &mut count)?;
        Bundle::from_files(files.finish()?)
    }

    /// The manifest's text.
    pub fn manifest_text(&self) -> Result<&str, Diagnostic> {
        let bytes = self
            .files
            .get(&self.manifest)
            .map_or(&[][..], Vec::as_slice);
        std::str::from_utf8(bytes).map_err(|_| {
            Diagnostic::error(codes::MANIFEST_SYNTAX, "the manifest is not UTF-8 text")
                .in_file(&self.manifest)
        })
    }
}

fn find_manifest(files: &BTreeMap<String, Vec<u8>>) -> Result<Option<String>, Diagnostic> {
    let found: Vec<&str> = MANIFEST_FILES
        .iter()
        .copied()
        .filter(|m| files.contains_key(*m))
        .collect();
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some((*one).to_owned())),
        _ => Err(Diagnostic::error(
            codes::AMBIGUOUS_MANIFEST,
            format!(
                "the bundle has more than one manifest: {}",
                found.join(", ")
            ),
        )),
    }
}

fn walk(
    dir: &Path,
    prefix: &str,
    limits: &Limits,
    files: &mut Files,
    count: &mut usize,
) -> Result<(), Diagnostic> {
    let io_err =
        |e: io::Error, what: &str| Diagnostic::error(codes::IO_ERROR, format!("{what}: {e}"));
    let shown_dir = if prefix.is_empty() {
        dir.display().to_string()
    } else {
        prefix.to_owned()
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| io_err(e, &format!("cannot read directory {shown_dir}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| io_err(e, &format!("cannot read directory {shown_dir}")))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            return Err(Diagnostic::error(
                codes::NON_UTF8_NAME,
                format!("a name in {shown_dir} is not UTF-8"),
            ));
        };
        if prefix.is_empty() && file_name == ".git" {
            continue;
        }
        let name = format!("{prefix}{file_name}");
        let name = normalize_name(name.as_bytes())?;
        *count += 1;
        if *count > limits.max_entries {
            return Err(too_many(*count, limits));
        }
        let meta = std::fs::symlink_metadata(entry.path())
            .map_err(|e| io_err(e, &format!("cannot read {name}")))?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            return Err(forbidden(&name, "a symbolic link"));
        } else if kind.is_dir() {
            walk(&entry.path(), &format!("{name}/"), limits, files, count)?;
        } else if kind.is_file() {
            if meta.len() > limits.max_file_bytes {
                return Err(file_too_large(&name, limits));
            }
            let file = std::fs::File::open(entry.path())
                .map_err(|e| io_err(e, &format!("cannot read {name}")))?;
            let consumed = Rc::new(Cell::new(u64::MAX / 2));
            let data = files.read(&name, file, &consumed)?;
            files.add(name, data)?;
        } else {
            return Err(forbidden(&name, "a special file (device, FIFO or socket)"));
        }
    }
    Ok(())
}

/// Normalises an entry name: UTF-8, relative, `/`-separated, without
/// `.`/`..` segments (a leading `./` is dropped), empty segments, control
/// characters or backslashes.
pub fn normalize_name(raw: &[u8]) -> Result<String, Diagnostic> {
    let Ok(name) = std::str::from_utf8(raw) else {
        return Err(Diagnostic::error(
            codes::NON_UTF8_NAME,
            format!("the name `{}` is not UTF-8", String::from_utf8_lossy(raw)),
        ));
    };
    let invalid =
        |why: &str| Diagnostic::error(codes::INVALID_PATH, format!("the name `{name}` {why}"));
    if name.len() > MAX_NAME_BYTES {
        return Err(invalid(&format!("is longer than {MAX_NAME_BYTES} bytes")));
    }
    let b = name.as_bytes();
    let drive = b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[1] == b':'
        && (b.len() == 2 || b[2] == b'/' || b[2] == b'\\');
    if name.starts_with('/') || drive {
        return Err(Diagnostic::error(
            codes::ABSOLUTE_PATH,
            format!("the name `{name}` is an absolute path"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("contains control characters"));
    }
    let mut rest = name;
    while let Some(r) = rest.strip_prefix("./") {
        rest = r;
    }
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.contains(&"..") || rest.split('\\').any(|s| s == "..") {
        return Err(Diagnostic::error(
            codes::PATH_TRAVERSAL,
            format!("the name `{name}` climbs out of the bundle (`..`)"),
        ));
    }
    if name.contains('\\') {
        return Err(invalid("contains a backslash"));
    }
    if rest.is_empty() || segments.iter().any(|s| s.is_empty() || *s == ".") {
        return Err(invalid("has an empty or `.` segment"));
    }
    Ok(rest.to_owned())
}

/// The files read so far, with the running totals the limits apply to.
struct Files {
    limits: Limits,
    total: u64,
    files: BTreeMap<String, Vec<u8>>,
    dirs: Vec<String>,
}

impl Files {
    fn new(limits: &Limits) -> Files {
        Files {
            limits: *limits,
            total: 0,
            files: BTreeMap::new(),
            dirs: Vec::new(),
        }
    }

    /// Reads one entry, counting every byte that comes out against the
    /// file and bundle caps and, for compressed data, the ratio.
    fn read(
        &mut self,
        name: &str,
        mut reader: impl Read,
        consumed: &Cell<u64>,
    ) -> Result<Vec<u8>, Diagnostic> {
        let mut data = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Diagnostic::error(
                        codes::CORRUPT_ARCHIVE,
                        format!("the entry cannot be read: {e}"),
                    )
                    .in_file(name));
                }
            };
            data.extend_from_slice(&buf[..n]);
            let inflated = data.len() as u64;
            if inflated > RATIO_FLOOR
                && inflated > consumed.get().max(1).saturating_mul(self.limits.max_ratio)
            {
                return Err(Diagnostic::error(
                    codes::ZIP_BOMB,
                    format!(
                        "the entry inflates more than {} times its compressed size",
                        self.limits.max_ratio
                    ),
                )
                .in_file(name));
            }
            if inflated > self.limits.max_file_bytes {
                return Err(file_too_large(name, &self.limits));
            }
            if self.total + inflated > self.limits.max_total_bytes {
                return Err(Diagnostic::error(
                    codes::BUNDLE_TOO_LARGE,
                    format!(
                        "the files add up to more than {} bytes",
                        self.limits.max_total_bytes
                    ),
                )
                .in_file(name));
            }
        }
        Ok(data)
    }

    fn add(&mut self, name: String, data: Vec<u8>) -> Result<(), Diagnostic> {
        if self.files.contains_key(&name) || self.dirs.contains(&name) {
            return Err(duplicate(&name));
        }
        self.total += data.len() as u64;
        self.files.insert(name, data);
        Ok(())
    }

    fn dir(&mut self, name: String) -> Result<(), Diagnostic> {
        if self.files.contains_key(&name) {
            return Err(duplicate(&name));
        }
        self.dirs.push(name);
        Ok(())
    }

    /// A name that is a file and also the directory of another file.
    fn finish(self) -> Result<BTreeMap<String, Vec<u8>>, Diagnostic> {
        for name in self.files.keys() {
            let below = format!("{name}/");
            if self
                .files
                .range(below.clone()..)
                .next()
                .is_some_and(|(k, _)| k.starts_with(&below))
            {
                return Err(duplicate(name));
            }
        }
        Ok(self.files)
    }
}

fn duplicate(name: &str) -> Diagnostic {
    Diagnostic::error(
        codes::DUPLICATE_ENTRY,
        format!("`{name}` appears more than once in the bundle"),
    )
    .in_file(name)
}

fn forbidden(name: &str, what: &str) -> Diagnostic {
    Diagnostic::error(
        codes::FORBIDDEN_ENTRY,
        format!("`{name}` is {what}; only regular files and directories are accepted"),
    )
    .in_file(name)
}

fn unix_kind(kind: u32) -> &'static str {
    match kind {
        0o120000 => "a symbolic link",
        0o020000 | 0o060000 => "a device",
        0o010000 => "a FIFO",
        0o140000 => "a socket",
        _ => "not a regular file",
    }
}

fn file_too_large(name: &str, limits: &Limits) -> Diagnostic {
    Diagnostic::error(
        codes::FILE_TOO_LARGE,
        format!("the file is larger than {} bytes", limits.max_file_bytes),
    )
    .in_file(name)
}

fn too_many(n: usize, limits: &Limits) -> Diagnostic {
    Diagnostic::error(
        codes::TOO_MANY_FILES,
        format!(
            "the bundle has {n} entries or more, at most {} are allowed",
            limits.max_entries
        ),
    )
}

fn archive_size(bytes: &[u8], limits: &Limits) -> Result<(), Diagnostic> {
    if bytes.len() as u64 > limits.max_archive_bytes {
        return Err(Diagnostic::error(
            codes::BUNDLE_TOO_LARGE,
            format!(
                "the archive is {} bytes, more than {}",
                bytes.len(),
                limits.max_archive_bytes
            ),
        ));
    }
    Ok(())
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// A decompressed stream that stops at a cap and at a ratio, leaving the
/// reason for the reader above (tar wraps the I/O errors it sees).
struct Capped<R> {
    inner: R,
    inflated: u64,
    cap: u64,
    ratio: u64,
    consumed: Rc<Cell<u64>>,
    failure: Rc<Cell<Option<Diagnostic>>>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.inflated += n as u64;
        let stop = if self.inflated > RATIO_FLOOR
            && self.inflated > self.consumed.get().max(1).saturating_mul(self.ratio)
        {
            Some(Diagnostic::error(
                codes::ZIP_BOMB,
                format!(
                    "the archive inflates more than {} times its size",
                    self.ratio
                ),
            ))
        } else if self.inflated > self.cap {
            Some(Diagnostic::error(
                codes::BUNDLE_TOO_LARGE,
                format!("the archive inflates to more than {} bytes", self.cap),
            ))
        } else {
            None
        };
        if let Some(d) = stop {
            self.failure.set(Some(d));
            return Err(io::Error::other("bundle limit reached"));
        }
        Ok(n)
    }
}

/// The canonical `.tar.gz` of a bundle: entries in name order, each a
/// regular file of mode 0644 owned by 0:0 with time 0, gzip without a name
/// or time. The same files give the same bytes.
pub fn pack(bundle: &Bundle) -> Vec<u8> {
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for (name, data) in &bundle.files {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(data.len() as u64);
        // Writing into memory cannot fail, and names were normalised when
        // the bundle was read.
        let _ = tar.append_data(&mut header, name, data.as_slice());
    }
    let gz = match tar.into_inner() {
        Ok(gz) => gz,
        Err(_) => return Vec::new(),
    };
    let mut out = gz.finish().unwrap_or_default();
    out.flush().ok();
    out
}
