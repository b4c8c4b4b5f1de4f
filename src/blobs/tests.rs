//! The folder backend with real files: whole blobs under their true names only.

use super::*;

fn store(dir: &tempfile::TempDir, bytes_max: u64) -> BlobStore {
    BlobStore::Folder(FolderBlobs::new(dir.path().join("l.db.blobs"), bytes_max))
}

fn names_under(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            out.extend(names_under(&entry.path()));
        } else {
            out.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    out
}

#[tokio::test]
async fn a_blob_is_kept_once_under_its_name_and_read_back_in_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(&dir, BLOB_BYTES_MAX_DEFAULT);
    // Over two chunks, so reads cross a chunk boundary.
    let data: Vec<u8> = (0..(2 * CHUNK_BYTES + 17)).map(|i| (i % 251) as u8).collect();
    let mut w = blobs.writer(None).await.unwrap();
    for piece in data.chunks(70_001) {
        w.write(piece).await.unwrap();
    }
    let put = w.finish().await.unwrap();
    assert_eq!(put, Put { name: BlobName::of(&data), bytes: data.len() as u64, existed: false });
    let mut again = blobs.writer(None).await.unwrap();
    again.write(&data).await.unwrap();
    assert!(again.finish().await.unwrap().existed, "the same content is stored once");
    let BlobStore::Folder(f) = &blobs else { unreachable!() };
    assert_eq!(names_under(f.root()), vec![put.name.to_hex()], "one file, no temporary left");

    let (start, end) = (CHUNK_BYTES as u64 - 5, 2 * CHUNK_BYTES as u64 + 3);
    let mut reader = blobs.read(&put.name, start, end).await.unwrap().expect("stored");
    assert_eq!(reader.remaining(), end - start);
    let mut got = Vec::new();
    while let Some(chunk) = reader.next_chunk().await.unwrap() {
        got.extend(chunk);
    }
    assert_eq!(got, &data[start as usize..end as usize]);
    assert_eq!(blobs.check(&put.name).await.unwrap(), BlobState::Whole { bytes: data.len() as u64 });
}

#[tokio::test]
async fn a_wrong_name_or_an_oversize_blob_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(&dir, 10);
    let claimed = BlobName::of(b"something else");
    let mut w = blobs.writer(Some(claimed)).await.unwrap();
    w.write(b"hello").await.unwrap();
    match w.finish().await {
        Err(BlobError::Mismatch { expected, found }) => {
            assert_eq!(expected, claimed);
            assert_eq!(found, BlobName::of(b"hello"));
        }
        other => panic!("{other:?}"),
    }
    let mut w = blobs.writer(None).await.unwrap();
    assert!(matches!(w.write(b"0123456789A").await, Err(BlobError::TooLarge { bytes_max: 10 })));
    drop(w);
    let BlobStore::Folder(f) = &blobs else { unreachable!() };
    assert!(names_under(f.root()).is_empty(), "{:?}", names_under(f.root()));
    assert_eq!(blobs.size(&claimed).await.unwrap(), None);
}

#[tokio::test]
async fn a_changed_file_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(&dir, 100);
    let mut w = blobs.writer(None).await.unwrap();
    w.write(b"evidence").await.unwrap();
    let put = w.finish().await.unwrap();
    let BlobStore::Folder(f) = &blobs else { unreachable!() };
    std::fs::write(f.path_of(&put.name), b"evidencE").unwrap();
    assert_eq!(
        blobs.check(&put.name).await.unwrap(),
        BlobState::Corrupt { found: Some(BlobName::of(b"evidencE")), bytes: 8 }
    );
}

#[test]
fn names_are_lower_case_hex_only() {
    let name = BlobName::of(b"x").to_hex();
    assert_eq!(BlobName::parse(&name).unwrap().to_hex(), name);
    for bad in [name.to_uppercase(), name[..63].to_owned(), format!("{name}0"), "../etc/passwd".to_owned()] {
        assert!(BlobName::parse(&bad).is_err(), "{bad}");
    }
}

/// An evidence's files are all stored only when each is there with the size it records; the
/// missing ones are named in the event's order.
#[tokio::test]
async fn presence_needs_every_file_with_its_recorded_size() {
    use super::stored::{MissingFile, Presence, presence};
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(&dir, BLOB_BYTES_MAX_DEFAULT);
    for bytes in [&b"alpha"[..], b"beta"] {
        let mut w = blobs.writer(None).await.unwrap();
        w.write(bytes).await.unwrap();
        w.finish().await.unwrap();
    }
    let file = |path: &str, bytes: &[u8], size: usize| serde_json::json!({"path": path, "blake3": BlobName::of(bytes).to_hex(), "bytes": size});
    let data = serde_json::json!({"files": [file("a", b"alpha", 5), file("b", b"beta", 4)]});
    assert_eq!(presence(&blobs, &data).await.unwrap(), Presence::Stored { files: 2 });
    let data =
        serde_json::json!({"files": [file("a", b"alpha", 6), file("b", b"beta", 4), file("c", b"gamma", 5)]});
    let missing = |path: &str, bytes: &[u8], stored_bytes| MissingFile {
        path: path.to_owned(),
        blake3: BlobName::of(bytes).to_hex(),
        stored_bytes,
    };
    assert_eq!(
        presence(&blobs, &data).await.unwrap(),
        Presence::Missing {
            files: 3,
            missing: 2,
            named: vec![missing("a", b"alpha", Some(5)), missing("c", b"gamma", None)]
        }
    );
    let none = serde_json::json!({"files": []});
    assert_eq!(presence(&blobs, &none).await.unwrap().stored(), None, "no file, nothing to record");
}
