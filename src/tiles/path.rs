//! C2SP tlog-tiles resource paths: `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`.
//!
//! `<N>` is written in groups of three digits, every group but the last prefixed by `x`
//! (`1234067` is `x001/x234/067`); `<L>` is 0 to 63 and `<W>` 1 to 255, both decimal without
//! leading zeroes. Only that one spelling of a resource parses, so the path of a tile on static
//! storage and its URL are the same string.

use std::fmt;

/// Hashes per full tile, and entries per full bundle.
pub const TILE_WIDTH: u32 = 256;
/// Tree levels one tile spans: a level-`L` tile holds the hashes at tree level `8·L`.
pub const TILE_HEIGHT: u32 = 8;
/// The highest tile level a path may name.
pub const TILE_LEVEL_MAX: u8 = 63;
/// Path elements of the largest index (2^64 − 1 has 20 digits: 7 groups).
const INDEX_GROUPS_MAX: usize = 7;

/// What a tile holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TileKind {
    /// Merkle tree hashes at tree level `8·level`.
    Hashes { level: u8 },
    /// The log entries (the records' leaves), each prefixed by its u16 big-endian length.
    Entries,
}

/// One tile or entry bundle: its kind, its index within its level and its width (256 for a
/// full tile, 1 to 255 for a partial one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TilePath {
    pub kind: TileKind,
    pub index: u64,
    pub width: u32,
}

/// Why a path names no tile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{path:?} is not a tile path: {reason} (tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>], N in groups of 3 digits such as x001/x234/067)"
)]
pub struct PathError {
    pub path: String,
    pub reason: String,
}

impl TilePath {
    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }

    /// The level of the tree whose hashes this tile holds (entries: the leaves, level 0).
    pub fn tree_level(&self) -> u32 {
        match self.kind {
            TileKind::Hashes { level } => u32::from(level) * TILE_HEIGHT,
            TileKind::Entries => 0,
        }
    }

    /// Leaves `[first, end)` the tile's hashes span; `None` when `end` exceeds 2^64.
    pub fn leaf_range(&self) -> Option<(u64, u64)> {
        let per_hash = 1u128.checked_shl(self.tree_level())?;
        let first_hash = u128::from(self.index) * u128::from(TILE_WIDTH);
        let first = first_hash.checked_mul(per_hash)?;
        let end = (first_hash + u128::from(self.width)).checked_mul(per_hash)?;
        Some((u64::try_from(first).ok()?, u64::try_from(end).ok()?))
    }

    /// Whether a tree of `size` leaves has this tile: each of its hashes is of a complete
    /// subtree of that tree.
    pub fn in_tree(&self, size: u64) -> bool {
        self.leaf_range().is_some_and(|(_, end)| end <= size)
    }

    /// The tiles of a tree of `size` leaves, one level after the other: every full tile and
    /// the partial one at the end of each level (none where the level's width is a multiple of
    /// 256), then the entry bundles likewise.
    pub fn all(size: u64) -> impl Iterator<Item = TilePath> {
        let levels = (0..=TILE_LEVEL_MAX).map(|level| TileKind::Hashes { level });
        levels.chain([TileKind::Entries]).flat_map(move |kind| {
            let level_bits = match kind {
                TileKind::Hashes { level } => u32::from(level) * TILE_HEIGHT,
                TileKind::Entries => 0,
            };
            let hashes = if level_bits >= 64 { 0 } else { size >> level_bits };
            let full = hashes / u64::from(TILE_WIDTH);
            let rest = (hashes % u64::from(TILE_WIDTH)) as u32;
            let partial = (rest > 0).then_some(TilePath { kind, index: full, width: rest });
            (0..full).map(move |index| TilePath { kind, index, width: TILE_WIDTH }).chain(partial)
        })
    }

    /// Parses `tile/…` (no leading slash).
    pub fn parse(path: &str) -> Result<TilePath, PathError> {
        let fail = |reason: &str| PathError { path: path.to_owned(), reason: reason.to_owned() };
        let rest = path.strip_prefix("tile/").ok_or_else(|| fail("it does not start with tile/"))?;
        let (kind, rest) = rest.split_once('/').ok_or_else(|| fail("no tile index"))?;
        let kind = if kind == "entries" {
            TileKind::Entries
        } else {
            let level = decimal(kind)
                .ok_or_else(|| fail("the level is not a decimal number without leading zeroes"))?;
            match u8::try_from(level) {
                Ok(level) if level <= TILE_LEVEL_MAX => TileKind::Hashes { level },
                _ => return Err(fail("the level is above 63")),
            }
        };
        let (index, width) = match rest.split_once(".p/") {
            Some((index, width)) => {
                let w = decimal(width)
                    .filter(|w| (1..u64::from(TILE_WIDTH)).contains(w))
                    .ok_or_else(|| fail("the partial width is not a decimal number from 1 to 255"))?;
                (index, w as u32)
            }
            None => (rest, TILE_WIDTH),
        };
        let index = parse_index(index).map_err(fail)?;
        Ok(TilePath { kind, index, width })
    }
}

/// `123` → Some(123); refuses empty strings, non-digits, leading zeroes (but `0`) and overflow.
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty()
        || s.len() > 20
        || !s.bytes().all(|b| b.is_ascii_digit())
        || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

fn parse_index(s: &str) -> Result<u64, &'static str> {
    let groups: Vec<&str> = s.split('/').collect();
    if groups.len() > INDEX_GROUPS_MAX {
        return Err("the index has too many path elements");
    }
    let (last, rest) = groups.split_last().ok_or("no tile index")?;
    if rest.first().is_some_and(|g| *g == "x000") {
        return Err("the index has a leading x000 element");
    }
    let mut index: u128 = 0;
    for (i, group) in groups.iter().enumerate() {
        let digits = if i + 1 < groups.len() {
            group.strip_prefix('x').ok_or("every index element but the last starts with x")?
        } else {
            last
        };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("every index element has exactly 3 digits");
        }
        index =
            index * 1000 + u128::from(digits.parse::<u16>().map_err(|_| "an index element is not digits")?);
    }
    u64::try_from(index).map_err(|_| "the index exceeds 2^64 - 1")
}

/// `1234067` → `x001/x234/067`.
fn write_index(f: &mut fmt::Formatter<'_>, index: u64) -> fmt::Result {
    let mut groups = vec![index % 1000];
    let mut rest = index / 1000;
    while rest > 0 {
        groups.push(rest % 1000);
        rest /= 1000;
    }
    for (i, g) in groups.iter().rev().enumerate() {
        if i + 1 < groups.len() {
            write!(f, "x{g:03}/")?;
        } else {
            write!(f, "{g:03}")?;
        }
    }
    Ok(())
}

impl fmt::Display for TilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TileKind::Hashes { level } => write!(f, "tile/{level}/")?,
            TileKind::Entries => f.write_str("tile/entries/")?,
        }
        write_index(f, self.index)?;
        if !self.is_full() {
            write!(f, ".p/{}", self.width)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(level: u8, index: u64, width: u32) -> TilePath {
        TilePath { kind: TileKind::Hashes { level }, index, width }
    }

    #[test]
    fn paths_round_trip_in_the_spec_encoding() {
        for (path, tile) in [
            ("tile/0/000", hashes(0, 0, 256)),
            ("tile/0/x001/x234/067", hashes(0, 1_234_067, 256)),
            ("tile/1/x001/000.p/17", hashes(1, 1000, 17)),
            ("tile/63/999", hashes(63, 999, 256)),
            ("tile/entries/x123/456.p/255", TilePath { kind: TileKind::Entries, index: 123_456, width: 255 }),
            ("tile/0/x018/x446/x744/x073/x709/x551/615", hashes(0, u64::MAX, 256)),
        ] {
            assert_eq!(TilePath::parse(path), Ok(tile), "{path}");
            assert_eq!(tile.to_string(), path);
        }
    }

    #[test]
    fn every_other_spelling_is_refused() {
        for bad in [
            "tile/0/1",
            "tile/0/0001",
            "tile/0/x000/001",
            "tile/0/001/002",
            "tile/0/x1/002",
            "tile/00/000",
            "tile/64/000",
            "tile/-1/000",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/0/000.p/07",
            "tile/0/000.p/",
            "tile/0/",
            "tile/0",
            "tile/data/000",
            "tiles/0/000",
            "tile/0/x018/x446/x744/x073/x709/x551/616",
            "tile/0/x001/x001/x001/x001/x001/x001/x001/001",
            "tile/0/+01",
        ] {
            let e = TilePath::parse(bad).expect_err(bad);
            assert!(e.to_string().contains("is not a tile path"), "{e}");
        }
    }

    #[test]
    fn a_tile_is_in_the_tree_once_every_hash_it_holds_is_complete() {
        assert!(hashes(0, 0, 1).in_tree(1));
        assert!(!hashes(0, 0, 2).in_tree(1));
        assert!(hashes(0, 0, 256).in_tree(256));
        assert!(hashes(1, 0, 1).in_tree(256));
        assert!(!hashes(1, 0, 1).in_tree(255));
        assert!(!hashes(8, 0, 1).in_tree(u64::MAX));
        assert!(!hashes(63, 0, 1).in_tree(u64::MAX));
        assert!(!hashes(0, u64::MAX, 256).in_tree(u64::MAX));
    }

    /// The spec's example: a tree of 70,000 leaves.
    #[test]
    fn the_tiles_of_a_tree_are_the_specs() {
        let tiles: Vec<TilePath> = TilePath::all(70_000).collect();
        let level = |l: u8| tiles.iter().filter(move |t| t.kind == TileKind::Hashes { level: l });
        assert_eq!(level(0).filter(|t| t.is_full()).count(), 273);
        assert_eq!(level(0).find(|t| !t.is_full()), Some(&hashes(0, 273, 112)));
        assert_eq!(level(1).copied().collect::<Vec<_>>(), [hashes(1, 0, 256), hashes(1, 1, 17)]);
        assert_eq!(level(2).copied().collect::<Vec<_>>(), [hashes(2, 0, 1)]);
        assert_eq!(level(3).count(), 0);
        assert_eq!(tiles.iter().filter(|t| t.kind == TileKind::Entries).count(), 274);
        assert!(tiles.iter().all(|t| t.in_tree(70_000)));
        let at_256: Vec<TilePath> = TilePath::all(256).filter(|t| t.kind != TileKind::Entries).collect();
        assert_eq!(at_256, [hashes(0, 0, 256), hashes(1, 0, 1)]);
        assert_eq!(TilePath::all(0).count(), 0);
    }
}
