#!/usr/bin/env python3
"""An independent reader of a tiled transparency log, written from the specifications only
(c2sp.org/tlog-tiles, c2sp.org/tlog-checkpoint and RFC 6962 section 2.1), with nothing but
Python's standard library.

Usage: tlog_tiles_check.py SOURCE CHECKPOINT_FILE [--token TOKEN]
                           [--inclusion I,J,...] [--consistency OLD,...]

SOURCE is a URL prefix (http://host:port) or a folder holding `tile/...`. The checkpoint's
tree size and root are taken from CHECKPOINT_FILE (its signature is not checked here).

It fetches every tile and entry bundle of that tree, checks that each entry hashes to its
level-0 tile hash, that each hash of a level-L tile (L >= 1) is the Merkle tree hash of the
full tile below it, and that the root computed from the tiles is the checkpoint's; then it
computes the asked inclusion and consistency proofs from the tiles alone (RFC 6962 PATH and
PROOF). It prints one JSON object: size, root, counts, and the proofs (base64). Exit 1 when a
check fails.
"""

import base64
import hashlib
import json
import os
import sys
import urllib.request

WIDTH = 256  # hashes per full tile
HASH = 32


class Failed(Exception):
    pass


def leaf_hash(entry):
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def largest_power_of_two_below(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def complete_root(hashes):
    """Merkle tree hash of a complete tree whose bottom row is `hashes` (a power of two)."""
    row = list(hashes)
    while len(row) > 1:
        row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row), 2)]
    return row[0]


def encode_index(n):
    s = "%03d" % (n % 1000)
    n //= 1000
    while n > 0:
        s = "x%03d/%s" % (n % 1000, s)
        n //= 1000
    return s


def tile_path(level, n, width):
    """level None names the entry bundles."""
    p = "tile/%s/%s" % ("entries" if level is None else level, encode_index(n))
    if width < WIDTH:
        p += ".p/%d" % width
    return p


class Source:
    def __init__(self, where, token):
        self.where = where
        self.token = token
        self.http = where.startswith("http://") or where.startswith("https://")
        self.fetched = 0

    def get(self, path):
        self.fetched += 1
        if self.http:
            req = urllib.request.Request(self.where.rstrip("/") + "/" + path)
            if self.token:
                req.add_header("Authorization", "Bearer " + self.token)
            with urllib.request.urlopen(req) as resp:
                if resp.status != 200:
                    raise Failed("%s: HTTP %d" % (path, resp.status))
                return resp.read()
        with open(os.path.join(self.where, *path.split("/")), "rb") as f:
            return f.read()


class Tree:
    def __init__(self, source, size):
        self.source = source
        self.size = size
        self.tiles = {}

    def width(self, level, n):
        """Width of tile n at `level` in this tree (0 when the tree has no such tile)."""
        hashes = self.size // (WIDTH ** level)
        return max(0, min(WIDTH, hashes - n * WIDTH))

    def tile(self, level, n):
        key = (level, n)
        if key not in self.tiles:
            w = self.width(level, n)
            if w == 0:
                raise Failed("tile %d/%d is not in a tree of size %d" % (level, n, self.size))
            data = self.source.get(tile_path(level, n, w))
            if len(data) != HASH * w:
                raise Failed("%s: %d bytes, expected %d" % (tile_path(level, n, w), len(data), HASH * w))
            self.tiles[key] = [data[i * HASH:(i + 1) * HASH] for i in range(w)]
        return self.tiles[key]

    def subtree(self, height, index):
        """MTH of the 2**height leaves from index * 2**height: from the tile at level height // 8."""
        level, rest = divmod(height, 8)
        first = index << rest
        n, at = divmod(first, WIDTH)
        hashes = self.tile(level, n)[at:at + (1 << rest)]
        if len(hashes) != 1 << rest:
            raise Failed("tile %d/%d is too narrow for subtree (%d, %d)" % (level, n, height, index))
        return complete_root(hashes)

    def mth(self, lo, hi):
        """RFC 6962 MTH(D[lo:hi])."""
        n = hi - lo
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n & (n - 1) == 0 and lo % n == 0:
            return self.subtree(n.bit_length() - 1, lo // n)
        k = largest_power_of_two_below(n)
        return node_hash(self.mth(lo, lo + k), self.mth(lo + k, hi))

    def path(self, m, lo, hi):
        """RFC 6962 PATH(m, D[lo:hi])."""
        n = hi - lo
        if n == 1:
            return []
        k = largest_power_of_two_below(n)
        if m < k:
            return self.path(m, lo, lo + k) + [self.mth(lo + k, hi)]
        return self.path(m - k, lo + k, hi) + [self.mth(lo, lo + k)]

    def subproof(self, m, lo, hi, whole):
        """RFC 6962 SUBPROOF(m, D[lo:hi], b)."""
        n = hi - lo
        if m == n:
            return [] if whole else [self.mth(lo, hi)]
        k = largest_power_of_two_below(n)
        if m <= k:
            return self.subproof(m, lo, lo + k, whole) + [self.mth(lo + k, hi)]
        return self.subproof(m - k, lo + k, hi, False) + [self.mth(lo, lo + k)]

    def check_levels(self):
        """Every hash of a level-L tile (L >= 1) is the MTH of the full tile below it."""
        level = 1
        checked = 0
        while WIDTH ** level <= self.size:
            n = 0
            while self.width(level, n) > 0:
                for i, h in enumerate(self.tile(level, n)):
                    below = self.tile(level - 1, n * WIDTH + i)
                    if len(below) != WIDTH or complete_root(below) != h:
                        raise Failed("tile %d/%d hash %d is not the root of the tile below" % (level, n, i))
                    checked += 1
                n += 1
            level += 1
        return checked

    def check_entries(self):
        """Every entry bundle: u16 big-endian length-prefixed entries hashing to the level-0 tile."""
        entries = 0
        n = 0
        while self.width(0, n) > 0:
            w = self.width(0, n)
            data = self.source.get(tile_path(None, n, w))
            hashes = self.tile(0, n)
            at = 0
            for i in range(w):
                if at + 2 > len(data):
                    raise Failed("entry bundle %d ends after %d entries, expected %d" % (n, i, w))
                length = int.from_bytes(data[at:at + 2], "big")
                entry = data[at + 2:at + 2 + length]
                if len(entry) != length:
                    raise Failed("entry bundle %d: entry %d is cut short" % (n, i))
                if leaf_hash(entry) != hashes[i]:
                    raise Failed("entry %d does not hash to its level-0 tile hash" % (n * WIDTH + i))
                at += 2 + length
                entries += 1
            if at != len(data):
                raise Failed("entry bundle %d has %d bytes after its %d entries" % (n, len(data) - at, w))
            n += 1
        return entries


def read_checkpoint(path):
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    body = text.split("\n\n", 1)[0].split("\n")
    if len(body) < 3:
        raise Failed("the checkpoint has fewer than three lines")
    size = int(body[1])
    if str(size) != body[1]:
        raise Failed("the checkpoint's size is not canonical decimal")
    root = base64.b64decode(body[2], validate=True)
    if len(root) != HASH:
        raise Failed("the checkpoint's root is not 32 bytes")
    return body[0], size, root


def numbers(args, flag):
    if flag not in args:
        return []
    value = args[args.index(flag) + 1]
    return [int(x) for x in value.split(",") if x]


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    token = argv[argv.index("--token") + 1] if "--token" in argv else None
    origin, size, root = read_checkpoint(argv[2])
    source = Source(argv[1], token)
    tree = Tree(source, size)
    try:
        computed = tree.mth(0, size)
        if computed != root:
            raise Failed("the root computed from the tiles differs from the checkpoint's")
        levels = tree.check_levels()
        entries = tree.check_entries()
        if entries != size:
            raise Failed("%d entries, expected %d" % (entries, size))
        b64 = lambda hs: [base64.b64encode(h).decode() for h in hs]
        inclusion = {}
        for i in numbers(argv, "--inclusion"):
            if not 0 <= i < size:
                raise Failed("inclusion of %d in a tree of size %d" % (i, size))
            inclusion[str(i)] = b64(tree.path(i, 0, size))
        consistency = {}
        for old in numbers(argv, "--consistency"):
            if not 0 < old <= size:
                raise Failed("consistency of %d with a tree of size %d" % (old, size))
            consistency[str(old)] = b64(tree.subproof(old, 0, size, True))
    except Failed as e:
        print("FAILED: %s" % e, file=sys.stderr)
        return 1
    print(json.dumps({
        "origin": origin,
        "size": size,
        "root": base64.b64encode(computed).decode(),
        "entries": entries,
        "level_hashes_checked": levels,
        "fetched": source.fetched,
        "inclusion": inclusion,
        "consistency": consistency,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
