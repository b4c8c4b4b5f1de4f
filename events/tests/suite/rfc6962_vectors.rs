//! The transparency-dev/merkle RFC 6962 vectors, vendored in tests/vectors/rfc6962.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use assay_events::Hash32;
use assay_events::b64::decode_any;
use assay_events::merkle::{
    Frontier, NodeId, consistency_plan, inclusion_plan, leaf_hash, root_of, verify_consistency,
    verify_consistency_bytes, verify_inclusion,
};
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/rfc6962")
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    out.sort();
}

fn load(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A base64 hash from a vector: "" or a wrong length is an error, never a panic.
fn hash(v: &Value) -> Result<Hash32, String> {
    let s = v.as_str().ok_or("hash is not a string")?;
    let raw = decode_any(s).map_err(|e| e.to_string())?;
    Hash32::from_slice(&raw).map_err(|e| e.to_string())
}

fn proof(v: &Value) -> Result<Vec<Hash32>, String> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.iter().map(hash).collect(),
        _ => Err("proof is not an array".into()),
    }
}

fn check_inclusion(v: &Value) -> Result<(), String> {
    let index = v["leafIdx"].as_u64().ok_or("leafIdx")?;
    let size = v["treeSize"].as_u64().ok_or("treeSize")?;
    let (leaf, root, proof) = (hash(&v["leafHash"])?, hash(&v["root"])?, proof(&v["proof"])?);
    verify_inclusion(index, size, &leaf, &proof, &root).map_err(|e| e.to_string())
}

fn bytes(v: &Value) -> Result<Vec<u8>, String> {
    decode_any(v.as_str().ok_or("hash is not a string")?).map_err(|e| e.to_string())
}

/// Through the byte-string entry point, as upstream verifiers take roots.
fn check_consistency(v: &Value) -> Result<(), String> {
    let size1 = v["size1"].as_u64().ok_or("size1")?;
    let size2 = v["size2"].as_u64().ok_or("size2")?;
    let proof: Vec<Vec<u8>> = match &v["proof"] {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().map(bytes).collect::<Result<_, _>>()?,
        _ => return Err("proof is not an array".into()),
    };
    verify_consistency_bytes(size1, size2, &bytes(&v["root1"])?, &bytes(&v["root2"])?, &proof)
        .map_err(|e| e.to_string())
}

struct Tree {
    leaves: Vec<Hash32>,
    roots: Vec<Hash32>,
    nodes: HashMap<NodeId, Hash32>,
}

fn tree() -> Tree {
    let t = load(&vectors_dir().join("tree.json"));
    let leaves: Vec<Hash32> = t["leaf_inputs_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| leaf_hash(&hex::decode(h.as_str().unwrap()).unwrap()))
        .collect();
    let roots = t["root_hex_by_size"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| Hash32::from_hex(h.as_str().unwrap()).unwrap())
        .collect();
    let mut nodes = HashMap::new();
    for (level, row) in t["node_hex_by_level"].as_array().unwrap().iter().enumerate() {
        for (index, h) in row.as_array().unwrap().iter().enumerate() {
            let id = NodeId { level: level as u8, index: index as u64 };
            nodes.insert(id, Hash32::from_hex(h.as_str().unwrap()).unwrap());
        }
    }
    Tree { leaves, roots, nodes }
}

#[test]
fn reference_tree_roots_and_nodes() {
    let t = tree();
    assert_eq!(t.leaves.len(), 8);
    assert_eq!(t.roots.len(), 9);
    let mut frontier = Frontier::new();
    let mut pushed = HashMap::new();
    assert_eq!(frontier.root(), t.roots[0]);
    assert_eq!(root_of(&[]), t.roots[0]);
    for (i, leaf) in t.leaves.iter().enumerate() {
        let completed = frontier.push(*leaf);
        assert_eq!(completed[0], (NodeId { level: 0, index: i as u64 }, *leaf));
        for pair in completed.windows(2) {
            assert_eq!(pair[1].0.level, pair[0].0.level + 1, "ancestors by increasing level");
        }
        pushed.extend(completed);
        assert_eq!(frontier.root(), t.roots[i + 1], "frontier root of size {}", i + 1);
        assert_eq!(root_of(&t.leaves[..=i]), t.roots[i + 1], "root_of size {}", i + 1);
        let restored = Frontier::from_bytes(frontier.size(), &frontier.to_bytes()).unwrap();
        assert_eq!(restored, frontier);
    }
    assert_eq!(pushed, t.nodes, "every complete subtree, by level");
}

#[test]
fn inclusion_and_consistency_vectors() {
    let t = tree();
    let mut files = Vec::new();
    json_files(&vectors_dir().join("inclusion"), &mut files);
    let n_inclusion = files.len();
    json_files(&vectors_dir().join("consistency"), &mut files);
    assert!(n_inclusion > 0 && files.len() > n_inclusion, "no vectors found");

    let mut matched_plans = 0;
    for path in &files {
        let rel = path.strip_prefix(vectors_dir()).unwrap().to_string_lossy().replace('\\', "/");
        let v = load(path);
        let want_err = v["wantErr"].as_bool().expect("wantErr");
        let inclusion = rel.starts_with("inclusion/");
        let got = if inclusion { check_inclusion(&v) } else { check_consistency(&v) };
        assert_eq!(got.is_err(), want_err, "{rel}: {got:?}");

        // Happy paths over the reference tree must be exactly what our plans produce.
        if !want_err {
            let get = |id: NodeId| t.nodes.get(&id).copied();
            if inclusion {
                let (i, n) = (v["leafIdx"].as_u64().unwrap(), v["treeSize"].as_u64().unwrap());
                if n <= 8 && hash(&v["root"]) == Ok(t.roots[n as usize]) {
                    let ours = inclusion_plan(i, n).unwrap().assemble(get).unwrap();
                    assert_eq!(ours, proof(&v["proof"]).unwrap(), "{rel}");
                    matched_plans += 1;
                }
            } else {
                let (m, n) = (v["size1"].as_u64().unwrap(), v["size2"].as_u64().unwrap());
                if n <= 8 && hash(&v["root2"]) == Ok(t.roots[n as usize]) {
                    let ours = consistency_plan(m, n).unwrap().assemble(get).unwrap();
                    assert_eq!(ours, proof(&v["proof"]).unwrap(), "{rel}");
                    matched_plans += 1;
                }
            }
        }
    }
    assert!(matched_plans >= 8, "plans compared against {matched_plans} happy paths");
}

#[test]
fn all_proofs_of_the_reference_tree_verify() {
    let t = tree();
    let get = |id: NodeId| t.nodes.get(&id).copied();
    for n in 1..=8u64 {
        for i in 0..n {
            let p = inclusion_plan(i, n).unwrap().assemble(get).unwrap();
            verify_inclusion(i, n, &t.leaves[i as usize], &p, &t.roots[n as usize]).unwrap();
        }
        for m in 1..=n {
            let p = consistency_plan(m, n).unwrap().assemble(get).unwrap();
            verify_consistency(m, n, &t.roots[m as usize], &t.roots[n as usize], &p).unwrap();
        }
    }
}
