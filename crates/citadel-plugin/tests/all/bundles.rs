//! Hostile bundles, each refused with its exact code, and the honest ones
//! read in full.

use citadel_plugin::{Bundle, Limits, codes, pack};

use crate::archives::{TarEntry, ZipEntry, deflate_zeros, tar_gz, zip};

const MANIFEST: &[u8] =
    br#"{"slug": "tiny", "name": "Tiny", "version": "1.0.0", "entry": "main.js"}"#;

fn ok_files() -> Vec<ZipEntry> {
    vec![
        ZipEntry::file("citadel-plugin.json", MANIFEST),
        ZipEntry::file("main.js", b"return 1;\n"),
    ]
}

/// Reads `bytes` with the default limits and expects exactly `code`.
fn refused(bytes: &[u8], code: &str) {
    refused_with(bytes, &Limits::default(), code);
}

fn refused_with(bytes: &[u8], limits: &Limits, code: &str) {
    match Bundle::from_bytes(bytes, limits) {
        Ok(b) => panic!(
            "expected {code}, read {:?}",
            b.files.keys().collect::<Vec<_>>()
        ),
        Err(d) => assert_eq!(d.code, code, "{d}"),
    }
}

fn with(extra: ZipEntry) -> Vec<u8> {
    let mut entries = ok_files();
    entries.push(extra);
    zip(&entries)
}

#[test]
fn an_honest_zip_reads_in_full() {
    let mut entries = ok_files();
    entries.push(ZipEntry::stored("assets/logo.txt", b"logo"));
    entries.push(ZipEntry {
        mode: Some(0o040755),
        ..ZipEntry::stored("assets/", b"")
    });
    let bundle = Bundle::from_bytes(&zip(&entries), &Limits::default()).unwrap();
    assert_eq!(bundle.manifest, "citadel-plugin.json");
    assert_eq!(
        bundle.files.keys().collect::<Vec<_>>(),
        ["assets/logo.txt", "citadel-plugin.json", "main.js"]
    );
    assert_eq!(bundle.files["main.js"], b"return 1;\n");
}

#[test]
fn a_single_top_directory_and_dot_slash_are_stripped() {
    let entries = vec![
        ZipEntry::file("tiny/citadel-plugin.json", MANIFEST),
        ZipEntry::file("tiny/main.js", b"return 1;"),
    ];
    let bundle = Bundle::from_bytes(&zip(&entries), &Limits::default()).unwrap();
    assert!(bundle.files.contains_key("main.js"));
    let entries = vec![
        ZipEntry::file("./citadel-plugin.json", MANIFEST),
        ZipEntry::file("./main.js", b"return 1;"),
    ];
    let bundle = Bundle::from_bytes(&zip(&entries), &Limits::default()).unwrap();
    assert!(bundle.files.contains_key("main.js"));
}

#[test]
fn hostile_zip_names() {
    let cases: &[(&[u8], &str)] = &[
        (b"../evil.js", codes::PATH_TRAVERSAL),
        (b"assets/../../evil.js", codes::PATH_TRAVERSAL),
        (b"..\\evil.js", codes::PATH_TRAVERSAL),
        (b"/etc/passwd", codes::ABSOLUTE_PATH),
        (b"C:/evil.js", codes::ABSOLUTE_PATH),
        (b"assets\\evil.js", codes::INVALID_PATH),
        (b"a//b.js", codes::INVALID_PATH),
        (b"a/./b.js", codes::INVALID_PATH),
        (b"evil\n.js", codes::INVALID_PATH),
        (b"\xff\xfe.js", codes::NON_UTF8_NAME),
    ];
    for (name, code) in cases {
        let entry = ZipEntry {
            name: name.to_vec(),
            ..ZipEntry::file("x", b"boom")
        };
        refused(&with(entry), code);
    }
}

#[test]
fn hostile_zip_entries() {
    refused(
        &with(ZipEntry::symlink("link.js", "/etc/passwd")),
        codes::FORBIDDEN_ENTRY,
    );
    let device = ZipEntry {
        mode: Some(0o020644),
        ..ZipEntry::stored("dev", b"")
    };
    refused(&with(device), codes::FORBIDDEN_ENTRY);
    refused(
        &with(ZipEntry::file("main.js", b"again")),
        codes::DUPLICATE_ENTRY,
    );
    // A file that is also a directory of another file.
    refused(
        &with(ZipEntry::file("main.js/x", b"")),
        codes::DUPLICATE_ENTRY,
    );
    let encrypted = ZipEntry {
        flags: 1,
        ..ZipEntry::stored("secret.js", b"xxxx")
    };
    refused(&with(encrypted), codes::UNSUPPORTED_COMPRESSION);
    let bzip2 = ZipEntry {
        method: 12,
        ..ZipEntry::stored("b.js", b"xxxx")
    };
    refused(&with(bzip2), codes::UNSUPPORTED_COMPRESSION);
    let bad_crc = ZipEntry {
        crc: 1,
        ..ZipEntry::file("c.js", b"content")
    };
    refused(&with(bad_crc), codes::CORRUPT_ARCHIVE);
    let lying_size = ZipEntry {
        size: 3,
        ..ZipEntry::file("c.js", b"content")
    };
    refused(&with(lying_size), codes::CORRUPT_ARCHIVE);
    refused(b"PK\x03\x04 not really", codes::CORRUPT_ARCHIVE);
    refused(b"#!/bin/sh\nrm -rf /\n", codes::UNKNOWN_FORMAT);
}

#[test]
fn a_zip_bomb_stops_at_the_ratio_cap() {
    // One gibibyte of zeros, declared as 1 KiB.
    let data = deflate_zeros(1 << 30);
    assert!(data.len() < 8 << 20);
    let bomb = ZipEntry {
        name: b"zeros.bin".to_vec(),
        data,
        method: 8,
        crc: 0,
        size: 1024,
        mode: Some(0o100644),
        flags: 0,
    };
    refused(&with(bomb), codes::ZIP_BOMB);
}

#[test]
fn the_bomb_stream_is_real_deflate() {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(&deflate_zeros(100_000)[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out.len(), 100_000);
    assert!(out.iter().all(|b| *b == 0));
}

#[test]
fn size_and_count_caps() {
    let limits = Limits::default();
    let big = vec![b'x'; limits.max_file_bytes as usize + 1];
    refused(
        &with(ZipEntry::stored("big.bin", &big)),
        codes::FILE_TOO_LARGE,
    );
    // Declared honestly or not, the bytes are counted.
    let lying = ZipEntry {
        size: 10,
        ..ZipEntry::stored("big.bin", &big)
    };
    refused(&with(lying), codes::FILE_TOO_LARGE);
    let small = Limits {
        max_total_bytes: 1000,
        ..Limits::default()
    };
    let mut entries = ok_files();
    for i in 0..4 {
        entries.push(ZipEntry::stored(&format!("f{i}.txt"), &[b'a'; 300]));
    }
    refused_with(&zip(&entries), &small, codes::BUNDLE_TOO_LARGE);
    let mut entries = ok_files();
    for i in 0..limits.max_entries {
        entries.push(ZipEntry::stored(&format!("f{i}.txt"), b""));
    }
    refused(&zip(&entries), codes::TOO_MANY_FILES);
    let tiny_archive = Limits {
        max_archive_bytes: 100,
        ..Limits::default()
    };
    refused_with(&zip(&ok_files()), &tiny_archive, codes::BUNDLE_TOO_LARGE);
}

#[test]
fn manifests_must_be_there_once() {
    refused(
        &zip(&[ZipEntry::file("main.js", b"")]),
        codes::MISSING_MANIFEST,
    );
    let mut entries = ok_files();
    entries.push(ZipEntry::file("citadel-plugin.yaml", b"slug: x"));
    refused(&zip(&entries), codes::AMBIGUOUS_MANIFEST);
}

fn tar_ok() -> Vec<TarEntry> {
    vec![
        TarEntry::file("citadel-plugin.json", MANIFEST),
        TarEntry::file("main.js", b"return 1;"),
    ]
}

fn tar_with(extra: TarEntry) -> Vec<u8> {
    let mut entries = tar_ok();
    entries.push(extra);
    tar_gz(&entries)
}

#[test]
fn hostile_tar_entries() {
    let bundle = Bundle::from_bytes(&tar_gz(&tar_ok()), &Limits::default()).unwrap();
    assert_eq!(bundle.files.len(), 2);
    let link = |kind, link| TarEntry {
        kind,
        link: Some(link),
        ..TarEntry::file("link.js", b"")
    };
    refused(
        &tar_with(link(tar::EntryType::Symlink, "/etc/passwd")),
        codes::FORBIDDEN_ENTRY,
    );
    refused(
        &tar_with(link(tar::EntryType::Link, "main.js")),
        codes::FORBIDDEN_ENTRY,
    );
    for kind in [
        tar::EntryType::Char,
        tar::EntryType::Block,
        tar::EntryType::Fifo,
    ] {
        let special = TarEntry {
            kind,
            ..TarEntry::file("dev", b"")
        };
        refused(&tar_with(special), codes::FORBIDDEN_ENTRY);
    }
    refused(
        &tar_with(TarEntry::file("../evil.js", b"x")),
        codes::PATH_TRAVERSAL,
    );
    refused(
        &tar_with(TarEntry::file("/abs.js", b"x")),
        codes::ABSOLUTE_PATH,
    );
    refused(
        &tar_with(TarEntry::file("main.js", b"x")),
        codes::DUPLICATE_ENTRY,
    );
    let non_utf8 = TarEntry {
        name: b"caf\xe9.js".to_vec(),
        ..TarEntry::file("x", b"")
    };
    refused(&tar_with(non_utf8), codes::NON_UTF8_NAME);
    // A header declaring a gibibyte is refused before anything inflates.
    let huge = TarEntry {
        size: Some(1 << 30),
        ..TarEntry::file("huge.bin", b"")
    };
    refused(&tar_with(huge), codes::FILE_TOO_LARGE);
    refused(&[0x1f, 0x8b, 8, 0, 0, 0], codes::CORRUPT_ARCHIVE);
}

#[test]
fn a_tar_gz_bomb_stops_at_the_ratio_cap() {
    let mut entries = tar_ok();
    for i in 0..3 {
        entries.push(TarEntry::file(
            &format!("zeros{i}.bin"),
            &vec![0u8; 3 << 20],
        ));
    }
    refused(&tar_gz(&entries), codes::ZIP_BOMB);
}

#[test]
fn directories_refuse_symlinks_and_skip_git() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("citadel-plugin.json"), MANIFEST).unwrap();
    std::fs::write(dir.path().join("main.js"), "return 1;").unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    std::fs::write(dir.path().join(".git/HEAD"), "ref").unwrap();
    let bundle = Bundle::from_dir(dir.path(), &Limits::default()).unwrap();
    assert_eq!(
        bundle.files.keys().collect::<Vec<_>>(),
        ["citadel-plugin.json", "main.js"]
    );
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd")).unwrap();
    let err = Bundle::from_dir(dir.path(), &Limits::default()).unwrap_err();
    assert_eq!(err.code, codes::FORBIDDEN_ENTRY);
    assert_eq!(err.file.as_deref(), Some("passwd"));
}

#[test]
fn packing_is_deterministic_and_round_trips() {
    let bundle = Bundle::from_bytes(&zip(&ok_files()), &Limits::default()).unwrap();
    let a = pack(&bundle);
    let b = pack(&bundle.clone());
    assert_eq!(a, b);
    let back = Bundle::from_bytes(&a, &Limits::default()).unwrap();
    assert_eq!(back, bundle);
    // The same files from a directory, written in another order and at
    // other times, pack to the same bytes.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.js"), "return 1;\n").unwrap();
    std::fs::write(dir.path().join("citadel-plugin.json"), MANIFEST).unwrap();
    let from_dir = Bundle::from_dir(dir.path(), &Limits::default()).unwrap();
    assert_eq!(pack(&from_dir), a);
}
