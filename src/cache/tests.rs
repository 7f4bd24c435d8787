//! Cache tests: each ends by checking that the ordered trees, the source tree and the byte
//! accounting agree with the entries (`consistent`).

use super::*;
use std::fs::File;
use std::time::{Duration, SystemTime};

fn open(dir: &Path, max_bytes: u64) -> Cache {
    Cache::open(dir, max_bytes, 1 << 20).unwrap()
}

pub(super) fn meta(bytes: &[u8], expires: u64, last_access: u64, source: &str) -> EntryMeta {
    EntryMeta {
        content_type: "image/png".into(),
        extension: "png".into(),
        length: bytes.len() as u64,
        checksum: blake3::hash(bytes).to_hex().to_string(),
        created: last_access,
        expires,
        last_access,
        source: source.into(),
        overlays: vec![],
        vary_accept: false,
        auto_quality: None,
    }
}

/// Store `len` bytes derived from `name` under `key(name)`.
/// The bytes of an entry kept in memory.
fn memory(cached: &Cached) -> Bytes {
    match &cached.content {
        Content::Memory(bytes) => bytes.clone(),
        Content::File(_) => panic!("a small entry read as a file"),
    }
}

fn put(cache: &Cache, name: &str, len: usize, expires: u64, last_access: u64, source: &str) -> Key {
    let k = key(&[name]);
    let bytes = name.bytes().cycle().take(len).collect::<Vec<u8>>();
    cache.put(&k, Bytes::from(bytes.clone()), meta(&bytes, expires, last_access, source));
    k
}

/// Read from disk, bypassing the memory tier.
fn get_cold(cache: &Cache, k: &Key) -> Option<Arc<Cached>> {
    cache.hot.invalidate(k);
    cache.get(k)
}

fn consistent(cache: &Cache) {
    let total = cache.index.check_consistent();
    assert_eq!(cache.disk_bytes(), total, "byte accounting");
}

fn age(path: &Path, secs: u64) {
    let file = File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(secs)).unwrap();
}

#[test]
fn put_get_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), 1 << 20);
    let t = now();
    let k = put(&cache, "a", 100, t + 3600, t - 50, "src/a");
    assert_eq!(memory(&cache.get_hot(&k).unwrap()).len(), 100);
    let cold = get_cold(&cache, &k).unwrap();
    assert_eq!(memory(&cold).len(), 100);
    assert_eq!(cold.meta.source, "src/a");
    // a disk hit moves the entry to the young end of the LRU order
    assert!(cold.meta.last_access >= t);
    assert_eq!(cache.index.get(&k).unwrap().1.last_access, cold.meta.last_access);
    assert!(cache.get(&key(&["missing"])).is_none());
    consistent(&cache);
}

#[test]
fn put_never_evicts_housekeeping_does() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), 1000);
    let t = now() - 10_000;
    let keys: Vec<Key> = (0..12).map(|i| put(&cache, &format!("e{i}"), 100, t + 20_000, t + i, "s")).collect();
    assert_eq!(cache.index.lens()[0], 12, "put is over budget but leaves eviction to the sweeper");
    // entry 0 is read from disk, entry 1 hit in memory (its touch reaches the index via the sweeper)
    get_cold(&cache, &keys[0]).unwrap();
    assert!(cache.get_hot(&keys[1]).is_some());
    let done = cache.housekeep();
    assert_eq!(done, Housekeeping { expired: 0, evicted: 3, orphans: 0 });
    // 1200 bytes over a 1000 budget: down to the 900 target, oldest untouched first
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(cache.index.get(k).is_some(), !(2..5).contains(&i), "entry {i}");
        assert_eq!(cache.blobs.path(k).exists(), !(2..5).contains(&i), "blob {i}");
    }
    assert_eq!(cache.disk_bytes(), 900);
    consistent(&cache);
}

#[test]
fn sweep_removes_exactly_the_expired_through_the_expiry_tree() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), 1 << 20);
    let t = now();
    let gone: Vec<Key> = (0..5).map(|i| put(&cache, &format!("old{i}"), 10, t - 100 + i, t - 200, "s")).collect();
    let kept: Vec<Key> = (0..5).map(|i| put(&cache, &format!("new{i}"), 10, t + 100 + i, t - 200, "s")).collect();
    let at_now = put(&cache, "edge", 10, t, t - 200, "s");
    // an entry the expiry tree does not know about is not found: the sweep reads that tree, not
    // every entry (this one only leaves through a read)
    let unlisted = key(&["unlisted"]);
    cache.index.insert_unlisted(&unlisted, &meta(b"x", t - 1, t - 1, "s"));
    cache.account(1, 0);
    assert_eq!(cache.sweep(), 6);
    assert!(gone.iter().chain([&at_now]).all(|k| cache.index.get(k).is_none() && cache.get(k).is_none()));
    assert!(kept.iter().all(|k| get_cold(&cache, k).is_some()));
    assert!(cache.index.get(&unlisted).is_some());
    assert!(cache.get(&unlisted).is_none(), "expired on read");
    assert_eq!(cache.index.lens(), [5, 5, 5, 5]);
    consistent(&cache);
}

#[test]
fn purge_by_source_and_by_overlay() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), 1 << 20);
    let t = now();
    let a1 = put(&cache, "a1", 10, t + 100, t, "src/a");
    let a2 = put(&cache, "a2", 10, t + 100, t, "src/a");
    let b = put(&cache, "b", 10, t + 100, t, "src/b");
    let (wk, bytes) = (key(&["w"]), b"watermarked".to_vec());
    let mut m = meta(&bytes, t + 100, t, "src/c");
    m.overlays = vec!["mark".into()];
    cache.put(&wk, Bytes::from(bytes), m);
    assert_eq!(cache.purge_source("src/a"), 2);
    assert!(cache.get(&a1).is_none() && cache.get(&a2).is_none());
    assert!(cache.get(&b).is_some() && cache.get(&wk).is_some());
    assert_eq!(cache.purge_source("mark"), 1);
    assert!(cache.get(&wk).is_none(), "purged through its overlay");
    assert!(!cache.blobs.path(&wk).exists());
    assert_eq!(cache.purge_source("src/c"), 0, "its source key went with it");
    assert_eq!(cache.index.lens(), [1, 1, 1, 1]);
    consistent(&cache);
}

#[test]
fn replacing_an_entry_moves_its_keys_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), 1 << 20);
    let (k, t) = (key(&["same"]), now());
    let mut first = meta(&[1; 300], t + 100, t - 100, "old-source");
    first.overlays = vec!["mark".into()];
    cache.put(&k, Bytes::from(vec![1; 300]), first);
    assert_eq!(cache.index.lens(), [1, 2, 1, 1]);
    cache.put(&k, Bytes::from(vec![2; 120]), meta(&[2; 120], t + 500, t - 10, "new-source"));
    assert_eq!(cache.index.lens(), [1, 1, 1, 1]);
    assert_eq!(cache.disk_bytes(), 120);
    assert_eq!(memory(&get_cold(&cache, &k).unwrap())[0], 2);
    assert_eq!(cache.purge_source("old-source"), 0);
    consistent(&cache);
}

#[test]
fn reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let t = now();
    let keys: Vec<Key> = {
        let cache = open(dir.path(), 1 << 20);
        (0..4).map(|i| put(&cache, &format!("r{i}"), 50 + i as usize, t + 100, t - 10, "s")).collect()
    };
    let cache = open(dir.path(), 1 << 20);
    assert_eq!(cache.disk_bytes(), 50 + 51 + 52 + 53);
    assert_eq!(cache.index.lens(), [4, 4, 4, 4]);
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(memory(&cache.get(k).unwrap()).len(), 50 + i);
    }
    assert_eq!(cache.purge_source("s"), 4);
    consistent(&cache);
}

#[test]
fn an_index_without_ordered_trees_is_rebuilt_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let t = now();
    let (expired, live) = {
        let cache = open(dir.path(), 1 << 20);
        (put(&cache, "x", 10, t - 5, t - 10, "s"), put(&cache, "y", 20, t + 100, t - 10, "s"))
    };
    {
        // what an older version left: entries and by_source only
        let db = super::index::open_db(&dir.path().join("cache/index")).unwrap();
        assert!(db.drop_tree("by_expiry").unwrap() && db.drop_tree("by_access").unwrap());
        db.remove(b"cache.ordered-trees.v1").unwrap();
        db.flush().unwrap();
    }
    let cache = open(dir.path(), 1 << 20);
    assert_eq!(cache.index.lens(), [2, 2, 2, 2]);
    consistent(&cache);
    assert_eq!(cache.housekeep().expired, 1);
    assert!(cache.index.get(&expired).is_none() && cache.get(&live).is_some());
    drop(cache);
    // built once: a later open does not clear and rebuild again
    let cache = open(dir.path(), 1 << 20);
    assert_eq!(cache.index.lens(), [1, 1, 1, 1]);
    consistent(&cache);
}

#[test]
fn orphans_older_than_the_threshold_are_collected() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), 1 << 20);
    let t = now();
    let indexed = put(&cache, "kept", 10, t + 100, t, "s");
    let shard = cache.blobs.path(&indexed).parent().unwrap().to_path_buf();
    let old_tmp = shard.join(".1a2b.tmp");
    let new_tmp = shard.join(".3c4d.tmp");
    let old_blob = cache.blobs.path(&key(&["orphan-old"]));
    let new_blob = cache.blobs.path(&key(&["orphan-new"]));
    let other = shard.join("README");
    for path in [&old_tmp, &new_tmp, &old_blob, &new_blob, &other] {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"junk").unwrap();
    }
    for path in [&old_tmp, &old_blob, &other, &cache.blobs.path(&indexed)] {
        age(path, 3600);
    }
    assert_eq!(cache.housekeep(), Housekeeping { expired: 0, evicted: 0, orphans: 2 });
    assert!(!old_tmp.exists() && !old_blob.exists());
    assert!(new_tmp.exists() && new_blob.exists() && other.exists());
    assert!(get_cold(&cache, &indexed).is_some(), "an old blob with an entry stays");
    // only every ORPHAN_SCAN_EVERY-th run scans
    age(&new_tmp, 3600);
    assert_eq!(cache.housekeep().orphans, 0);
    assert!(new_tmp.exists());
    consistent(&cache);
}

#[test]
fn a_torn_or_missing_blob_is_dropped_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), 1 << 20);
    let t = now();
    let torn = put(&cache, "torn", 64, t + 100, t, "s");
    let lost = put(&cache, "lost", 64, t + 100, t, "s");
    let mut bytes = std::fs::read(cache.blobs.path(&torn)).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(cache.blobs.path(&torn), &bytes).unwrap();
    std::fs::remove_file(cache.blobs.path(&lost)).unwrap();
    assert!(get_cold(&cache, &torn).is_none());
    assert!(get_cold(&cache, &lost).is_none());
    assert!(!cache.blobs.path(&torn).exists());
    assert_eq!(cache.index.lens(), [0, 0, 0, 0]);
    assert_eq!(cache.disk_bytes(), 0);
    consistent(&cache);
}

#[test]
fn concurrent_writers_readers_and_housekeeping_keep_the_trees_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), 2000);
    let t = now();
    std::thread::scope(|s| {
        for w in 0..4u64 {
            let cache = &cache;
            s.spawn(move || {
                for i in 0..200u64 {
                    let name = format!("k{}", (i * 7 + w) % 16);
                    let expires = if i % 5 == 0 { t - 1 } else { t + 100 };
                    put(cache, &name, 50 + (i % 30) as usize, expires, t - 1000 + i, &format!("s{}", i % 3));
                    get_cold(cache, &key(&[&format!("k{}", i % 16)]));
                    if i % 50 == 0 {
                        cache.purge_source("s1");
                    }
                }
            });
        }
        s.spawn(|| (0..20).map(|_| cache.housekeep().total()).sum::<usize>());
    });
    consistent(&cache);
    cache.housekeep();
    assert!(cache.disk_bytes() <= 2000);
    consistent(&cache);
}

#[tokio::test(flavor = "current_thread")]
async fn a_write_over_budget_wakes_the_housekeeper() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), 1000);
    let now = now();
    put(&cache, "a", 600, now + 60, now, "s");
    let asleep = tokio::time::timeout(Duration::from_millis(20), cache.over_budget()).await;
    assert!(asleep.is_err(), "under budget: nothing to wake for");
    put(&cache, "b", 600, now + 60, now, "s");
    tokio::time::timeout(Duration::from_secs(1), cache.over_budget()).await.expect("woken by the write over budget");
    assert_eq!(cache.housekeep().evicted, 1);
}

/// A large result written to the spool, adopted, then found again after a restart as an open file
/// (never in memory); one cut short on disk is dropped; the spool is emptied at open.
#[test]
fn large_entries_are_adopted_files_and_stay_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let t = now();
    let k = key(&["large"]);
    let body: Vec<u8> = (0..LARGE_ENTRY + 4096).map(|i| (i % 251) as u8).collect();
    {
        let cache = open(dir.path(), 1 << 30);
        let path = cache.spool_dir().join("result.tmp");
        std::fs::write(&path, &body).unwrap();
        let (file, len, checksum) = open_output(&path).unwrap();
        assert_eq!((len, checksum.as_str()), (body.len() as u64, blake3::hash(&body).to_hex().as_str()));
        let mut m = meta(&body, t + 100, t, "src/large");
        m.checksum = checksum;
        cache.adopt(&k, tempfile::TempPath::try_from_path(path).unwrap(), file, m);
        assert!(cache.get_hot(&k).is_none(), "kept out of the memory tier");
        std::fs::write(cache.spool_dir().join("left-by-a-crash"), b"x").unwrap();
        cache.flush();
    }
    let cache = open(dir.path(), 1 << 30);
    assert_eq!(std::fs::read_dir(cache.spool_dir()).unwrap().count(), 0);
    let hit = cache.get(&k).unwrap();
    let Content::File(file) = &hit.content else { panic!("a large entry read into memory") };
    let mut read = Vec::new();
    std::io::Read::read_to_end(&mut &**file, &mut read).unwrap();
    assert!(read == body);
    drop(hit);
    File::options().write(true).open(cache.blobs.path(&k)).unwrap().set_len(1000).unwrap();
    assert!(cache.get(&k).is_none(), "a cut blob is not served");
    assert!(cache.index.get(&k).is_none());
    consistent(&cache);
}
