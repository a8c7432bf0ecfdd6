//! Mutations of board files: structure-aware ones on the TOML tree (values swapped for
//! boundary and hostile ones, keys added and removed, regions copied, renamed, linked into
//! fallback loops, pointed at hostile hook files), line-level ones, and byte-level ones.

use toml::{Table, Value};

use super::sandbox::HOOK_PATHS;

/// The largest input the fuzzer makes: a little over the board-file cap, so that the cap
/// itself is exercised.
pub const MAX_INPUT: usize = 600 << 10;

/// Sizes at and around every boundary the validator knows.
const SIZES: &[&str] = &[
    "0",
    "1",
    "4095",
    "4096",
    "4097",
    "6K",
    "4K",
    "8K",
    "64K",
    "1M",
    "1536K",
    "2M",
    "4M",
    "6M",
    "8M",
    "16M",
    "64M",
    "256M",
    "1G",
    "4G",
    "8G",
    "2T",
    "16E",
    "17179869184G",
    "0x0",
    "0x9000_0000",
    "0xffff_ffff_ffc0_0000",
    "0xffff_ffff_ffff_f000",
    "0xffffffffffffffff",
    "18446744073709551615",
    "18446744073709551616",
    "-4K",
    "1_0",
    "",
    " ",
    "4 K",
    "4k",
    "4KiB",
    "0o777",
    "0b101",
];

/// Integers, sizes written as TOML integers.
const INTEGERS: &[i64] = &[
    0,
    1,
    -1,
    2,
    64,
    65,
    4095,
    4096,
    4097,
    1 << 20,
    1 << 22,
    1 << 32,
    0x9000_0000,
    i64::MAX,
    i64::MIN,
    0o660,
    0o644,
    0o7777,
];

/// Strings hostile to the languages heapgen writes, and names the validator knows.
const STRINGS: &[&str] = &[
    "",
    "a",
    "b",
    "r0",
    "r1",
    "camera",
    "video",
    "reserved",
    "system",
    "linux,cma",
    "default_cma_region",
    "cached",
    "uncached",
    "pool",
    "direct",
    "arm64",
    "x86_64",
    "aarch64",
    "0660",
    "0644",
    "0444",
    "0666",
    "0601",
    "4660",
    "root",
    "video",
    "Root",
    "\"",
    "'",
    "\\",
    "${@bb.utils.which(d.getVar('PATH'), 'id')}",
    "${HOME}",
    "$(shell id)",
    "`id`",
    "*/",
    "/*",
    "\n",
    "\r\n",
    "\t",
    "\u{1b}[31m",
    "\u{202e}",
    "\u{2066}",
    "\u{2028}",
    "\u{0}",
    "\u{7f}",
    "é",
    "日本",
    "../../etc/passwd",
    "/etc/shadow",
    "a b",
    "#",
    ";",
    "|",
    "*emph*",
    "ref_",
    ":role:`x`",
    "a@b",
    "a.b,c_d-e",
    "x@90000000",
    "video@60000000",
];

/// Keys of every table of the schema, for additions.
const KEYS: &[&[&str]] = &[
    heapgen::model::ROOT_KEYS,
    heapgen::model::BOARD_KEYS,
    heapgen::model::DEFAULTS_KEYS,
    heapgen::model::REGION_KEYS,
    heapgen::model::ACCESS_KEYS,
    heapgen::model::RESERVE_KEYS,
    heapgen::model::STRATEGY_KEYS,
    heapgen::model::GUARD_KEYS,
    heapgen::model::ALIGNMENT_KEYS,
];

/// Tokens for byte-level insertion.
const TOKENS: &[&str] = &[
    "[[region]]\n",
    "[board]\n",
    "[defaults]\n",
    " = ",
    "\"",
    "'",
    "'''",
    "\"\"\"",
    "0",
    "\n",
    "{",
    "}",
    "[",
    "]",
    ",",
    ".",
    "#",
    "\\",
    "\\u0000",
    "\\u202e",
    "${@",
    "*/",
    "=",
    "-",
    "_",
    "0x",
    "0o",
    "K",
    "M",
    "E",
    "true",
    "name",
    "heap",
    "cma",
    "fallback",
    "hooks",
    "\u{202e}",
    "\u{ff}",
    "\u{10ffff}",
];

/// A step of a path into a TOML tree.
#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    Index(usize),
}

/// The mutator: a seeded random source and the operations above.
#[derive(Debug)]
pub struct Mutator {
    /// The random source (seeded: a run is reproducible with `--seed`).
    pub rng: fastrand::Rng,
}

impl Mutator {
    /// A mutator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.usize(..items.len())]
    }

    /// One to four stacked mutations of `base` (mostly one, so that a valid board often stays
    /// valid and reaches the generator); `seeds` are other inputs to splice from.
    pub fn mutate(&mut self, base: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
        let mut cur = base.to_vec();
        let n = match self.rng.u8(..4) {
            0 | 1 => 1,
            2 => 2,
            _ => self.rng.usize(3..5),
        };
        for _ in 0..n {
            let roll = self.rng.u8(..100);
            cur = if roll < 60 {
                self.structural(&cur, seeds)
                    .unwrap_or_else(|| self.bytes(&cur))
            } else if roll < 75 {
                self.lines(&cur, seeds)
            } else {
                self.bytes(&cur)
            };
        }
        if cur.len() > MAX_INPUT {
            cur.truncate(MAX_INPUT);
        }
        cur
    }

    /// A random value: a size, an integer, a string, a boolean, an array or a table.
    fn value(&mut self) -> Value {
        match self.rng.u8(..12) {
            0..=3 => Value::String(self.pick(SIZES).to_string()),
            4 | 5 => Value::Integer(*self.pick(INTEGERS)),
            6..=8 => Value::String(self.string()),
            9 => Value::Boolean(self.rng.bool()),
            10 => Value::Array(
                (0..self.rng.usize(..4))
                    .map(|_| match self.rng.u8(..3) {
                        0 => Value::String(self.pick(SIZES).to_string()),
                        1 => Value::String(self.string()),
                        _ => Value::Array(vec![
                            Value::String(self.pick(SIZES).to_string()),
                            Value::String(self.pick(SIZES).to_string()),
                        ]),
                    })
                    .collect(),
            ),
            _ => {
                let mut t = Table::new();
                let keys = *self.pick(KEYS);
                for _ in 0..self.rng.usize(1..4) {
                    let v = self.value_shallow();
                    t.insert(self.pick(keys).to_string(), v);
                }
                Value::Table(t)
            }
        }
    }

    fn value_shallow(&mut self) -> Value {
        match self.rng.u8(..4) {
            0 => Value::String(self.pick(SIZES).to_string()),
            1 => Value::Integer(*self.pick(INTEGERS)),
            2 => Value::Boolean(self.rng.bool()),
            _ => Value::String(self.string()),
        }
    }

    /// A hostile or known string, sometimes two glued, sometimes long.
    fn string(&mut self) -> String {
        let mut s = self.pick(STRINGS).to_string();
        match self.rng.u8(..10) {
            0 => {
                let more = *self.pick(STRINGS);
                s.push_str(more);
            }
            1 => s = s.repeat(self.rng.usize(2..80)),
            2 => s = "x".repeat(self.rng.usize(30..70)),
            _ => {}
        }
        s
    }

    fn paths(v: &Value, at: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
        if at.len() > 6 {
            return;
        }
        match v {
            Value::Table(t) => {
                for (k, v) in t {
                    at.push(Seg::Key(k.clone()));
                    out.push(at.clone());
                    Self::paths(v, at, out);
                    at.pop();
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate().take(200) {
                    at.push(Seg::Index(i));
                    out.push(at.clone());
                    Self::paths(v, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }

    fn get<'v>(v: &'v Value, path: &[Seg]) -> Option<&'v Value> {
        let Some((first, rest)) = path.split_first() else {
            return Some(v);
        };
        let next = match (first, v) {
            (Seg::Key(k), Value::Table(t)) => t.get(k)?,
            (Seg::Index(i), Value::Array(a)) => a.get(*i)?,
            _ => return None,
        };
        Self::get(next, rest)
    }

    fn get_mut<'v>(v: &'v mut Value, path: &[Seg]) -> Option<&'v mut Value> {
        let Some((first, rest)) = path.split_first() else {
            return Some(v);
        };
        let next = match (first, v) {
            (Seg::Key(k), Value::Table(t)) => t.get_mut(k)?,
            (Seg::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
        Self::get_mut(next, rest)
    }

    /// One mutation of the TOML tree, or `None` when `input` is not TOML.
    fn structural(&mut self, input: &[u8], seeds: &[Vec<u8>]) -> Option<Vec<u8>> {
        let text = std::str::from_utf8(input).ok()?;
        let mut root = Value::Table(text.parse::<Table>().ok()?);
        let mut paths = Vec::new();
        Self::paths(&root, &mut Vec::new(), &mut paths);
        match self.rng.u8(..16) {
            // Free text that stays valid: the description, which reaches BitBake and rst.
            14 | 15 => {
                let mut d = String::new();
                for _ in 0..self.rng.usize(1..5) {
                    let s = self.string();
                    d.push_str(&s);
                }
                if let Some(Value::Table(b)) = Self::get_mut(&mut root, &[Seg::Key("board".into())])
                {
                    b.insert("description".into(), Value::String(d));
                }
            }
            // A value becomes another.
            0..=3 if !paths.is_empty() => {
                let p = self.pick(&paths).clone();
                let v = self.value();
                *Self::get_mut(&mut root, &p)? = v;
            }
            // A key goes.
            4 if !paths.is_empty() => {
                let p = self.pick(&paths).clone();
                let (last, parent) = p.split_last()?;
                match (Self::get_mut(&mut root, parent)?, last) {
                    (Value::Table(t), Seg::Key(k)) => {
                        t.remove(k);
                    }
                    (Value::Array(a), Seg::Index(i)) => {
                        a.remove(*i);
                    }
                    _ => {}
                }
            }
            // A key comes, in a table of the tree.
            5 | 6 => {
                let mut tables: Vec<Vec<Seg>> = paths
                    .iter()
                    .filter(|p| matches!(Self::get(&root, p), Some(Value::Table(_))))
                    .cloned()
                    .collect();
                tables.push(Vec::new());
                let p = self.pick(&tables).clone();
                let keys = *self.pick(KEYS);
                let key = self.pick(keys).to_string();
                let v = self.value();
                if let Some(Value::Table(t)) = Self::get_mut(&mut root, &p) {
                    t.insert(key, v);
                }
            }
            // Regions: copied, renamed onto each other, linked into fallback loops.
            7..=9 => self.regions(&mut root),
            // Hooks at a hostile file.
            10 => {
                let hook = self.pick(HOOK_PATHS).to_string();
                if let Some(Value::Array(regions)) =
                    Self::get_mut(&mut root, &[Seg::Key("region".into())])
                {
                    if !regions.is_empty() {
                        let i = self.rng.usize(..regions.len());
                        if let Value::Table(r) = &mut regions[i] {
                            r.insert("hooks".into(), Value::String(hook));
                        }
                    }
                }
            }
            // Access modes around the world bits, with or without an opt-in.
            11 => {
                let mut access = Table::new();
                let mode = self.rng.u32(..0o10000);
                access.insert(
                    "mode".into(),
                    if self.rng.bool() {
                        Value::String(format!("{mode:04o}"))
                    } else {
                        Value::Integer(i64::from(mode))
                    },
                );
                if self.rng.bool() {
                    let key = if self.rng.bool() {
                        "world-access"
                    } else {
                        "world-writable"
                    };
                    access.insert(key.into(), Value::Boolean(self.rng.bool()));
                }
                let target = if self.rng.bool() {
                    "defaults"
                } else {
                    "region"
                };
                match Self::get_mut(&mut root, &[Seg::Key(target.into())]) {
                    Some(Value::Table(t)) => {
                        t.insert("access".into(), Value::Table(access));
                    }
                    Some(Value::Array(a)) if !a.is_empty() => {
                        let i = self.rng.usize(..a.len());
                        if let Value::Table(r) = &mut a[i] {
                            r.insert("access".into(), Value::Table(access));
                        }
                    }
                    _ => {}
                }
            }
            // A subtree from another input.
            _ => {
                let other = self.pick(seeds);
                let other: Value = Value::Table(std::str::from_utf8(other).ok()?.parse().ok()?);
                let mut theirs = Vec::new();
                Self::paths(&other, &mut Vec::new(), &mut theirs);
                if theirs.is_empty() || paths.is_empty() {
                    return None;
                }
                let from = self.pick(&theirs).clone();
                let v = Self::get(&other, &from)?.clone();
                let to = self.pick(&paths).clone();
                *Self::get_mut(&mut root, &to)? = v;
            }
        }
        let Value::Table(t) = root else { return None };
        toml::to_string(&t).ok().map(String::into_bytes)
    }

    /// Region-level mutations: the part of the schema where regions refer to each other.
    fn regions(&mut self, root: &mut Value) {
        let Some(Value::Array(regions)) = Self::get_mut(root, &[Seg::Key("region".into())]) else {
            return;
        };
        if regions.is_empty() {
            return;
        }
        let names: Vec<String> = regions
            .iter()
            .filter_map(|r| r.get("name").and_then(Value::as_str).map(str::to_string))
            .collect();
        match self.rng.u8(..5) {
            0 => {
                // Copies with fresh names, areas and heaps, sometimes past the region limit.
                let n = if self.rng.u8(..8) == 0 {
                    self.rng.usize(100..140)
                } else {
                    self.rng.usize(1..4)
                };
                let template = regions[self.rng.usize(..regions.len())].clone();
                for k in 0..n {
                    let mut r = template.clone();
                    if let Value::Table(t) = &mut r {
                        let id = self.rng.u32(..1_000_000);
                        t.insert("name".into(), Value::String(format!("g{id}-{k}")));
                        t.insert("heap".into(), Value::String(format!("gh{id}-{k}")));
                        if let Some(Value::String(cma)) = t.get("cma") {
                            let at = cma.find('@').map(|i| cma[i..].to_string());
                            if at.is_none() || self.rng.bool() {
                                t.insert("cma".into(), Value::String(format!("ga{id}-{k}")));
                            } else {
                                t.insert(
                                    "cma".into(),
                                    Value::String(format!("ga{id}-{k}{}", at.unwrap_or_default())),
                                );
                            }
                        }
                    }
                    regions.push(r);
                }
            }
            1 if !names.is_empty() => {
                // Fallback lists over the board's regions: loops, self, duplicates, unknowns.
                let i = self.rng.usize(..regions.len());
                let list: Vec<Value> = (0..self.rng.usize(0..5))
                    .map(|_| {
                        if self.rng.u8(..10) == 0 {
                            Value::String(self.string())
                        } else {
                            Value::String(self.pick(&names).clone())
                        }
                    })
                    .collect();
                if let Value::Table(t) = &mut regions[i] {
                    t.insert("fallback".into(), Value::Array(list));
                }
            }
            2 if !names.is_empty() => {
                // Two regions share a name, an area or a heap.
                let i = self.rng.usize(..regions.len());
                let key = *self.pick(&["name", "cma", "heap"]);
                let donor = regions[self.rng.usize(..regions.len())]
                    .get(key)
                    .cloned()
                    .unwrap_or(Value::String(self.pick(&names).clone()));
                if let Value::Table(t) = &mut regions[i] {
                    t.insert(key.into(), donor);
                }
            }
            3 => {
                // A reserve with a consistent node name: gets past the name rules.
                let i = self.rng.usize(..regions.len());
                let base = self.rng.u64(..4096) << 22;
                let mut reserve = Table::new();
                reserve.insert("base".into(), Value::String(format!("{base:#x}")));
                reserve.insert("size".into(), Value::String(self.pick(SIZES).to_string()));
                if let Value::Table(t) = &mut regions[i] {
                    let stem = t
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("r")
                        .to_string();
                    t.insert("cma".into(), Value::String(format!("{stem}@{base:x}")));
                    t.insert("reserve".into(), Value::Table(reserve));
                }
            }
            _ => {
                // A pool with sizes around the granule.
                let i = self.rng.usize(..regions.len());
                let mut st = Table::new();
                st.insert("kind".into(), Value::String("pool".into()));
                st.insert(
                    "sizes".into(),
                    Value::Array(
                        (0..self.rng.usize(0..10))
                            .map(|_| Value::String(self.pick(SIZES).to_string()))
                            .collect(),
                    ),
                );
                st.insert("depth".into(), Value::Integer(*self.pick(INTEGERS)));
                if let Value::Table(t) = &mut regions[i] {
                    t.insert("strategy".into(), Value::Table(st));
                }
            }
        }
    }

    /// Line-level mutations: a line dropped, copied, moved, or taken from another input.
    fn lines(&mut self, input: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
        let mut lines: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
        if lines.is_empty() {
            return self.bytes(input);
        }
        let other = self.pick(seeds).clone();
        let theirs: Vec<&[u8]> = other.split_inclusive(|&b| b == b'\n').collect();
        let i = self.rng.usize(..lines.len());
        match self.rng.u8(..5) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i];
                for _ in 0..self.rng.usize(1..4) {
                    lines.insert(i, l);
                }
            }
            2 => {
                let j = self.rng.usize(..lines.len());
                lines.swap(i, j);
            }
            3 if !theirs.is_empty() => {
                let l = theirs[self.rng.usize(..theirs.len())];
                lines.insert(i, l);
            }
            _ => {
                // A block repeated many times: many keys, many regions.
                let j = (i + self.rng.usize(1..12)).min(lines.len());
                let block: Vec<&[u8]> = lines[i..j].to_vec();
                for _ in 0..self.rng.usize(2..300) {
                    lines.extend_from_slice(&block);
                }
            }
        }
        lines.concat()
    }

    /// Byte-level mutations.
    fn bytes(&mut self, input: &[u8]) -> Vec<u8> {
        let mut v = input.to_vec();
        let at = |rng: &mut fastrand::Rng, len: usize| if len == 0 { 0 } else { rng.usize(..=len) };
        match self.rng.u8(..8) {
            0 if !v.is_empty() => {
                let i = self.rng.usize(..v.len());
                v[i] ^= 1 << self.rng.u8(..8);
            }
            1 if !v.is_empty() => {
                let i = self.rng.usize(..v.len());
                v[i] = self.rng.u8(..);
            }
            2 => {
                let i = at(&mut self.rng, v.len());
                let t = self.pick(TOKENS).as_bytes();
                v.splice(i..i, t.iter().copied());
            }
            3 if !v.is_empty() => {
                let i = self.rng.usize(..v.len());
                let n = self.rng.usize(1..64).min(v.len() - i);
                v.drain(i..i + n);
            }
            4 if !v.is_empty() => {
                let i = self.rng.usize(..v.len());
                let n = self.rng.usize(1..256).min(v.len() - i);
                let chunk: Vec<u8> = v[i..i + n].to_vec();
                let j = at(&mut self.rng, v.len());
                v.splice(j..j, chunk);
            }
            5 => {
                let i = at(&mut self.rng, v.len());
                let n = self.rng.usize(1..8);
                let junk: Vec<u8> = (0..n).map(|_| self.rng.u8(..)).collect();
                v.splice(i..i, junk);
            }
            6 if !v.is_empty() => {
                let n = self.rng.usize(..v.len());
                v.truncate(n);
            }
            _ => {
                // One token repeated: long keys, deep nesting, many errors.
                let i = at(&mut self.rng, v.len());
                let t = self.pick(TOKENS).as_bytes();
                let n = self.rng.usize(1..20_000);
                let run: Vec<u8> = t.iter().copied().cycle().take(t.len() * n).collect();
                v.splice(i..i, run);
            }
        }
        v
    }

    /// The board file's name for one input: mostly `board.toml` (the name the binary sees),
    /// sometimes a hostile one.
    pub fn source_name(&mut self) -> String {
        const NAMES: &[&str] = &[
            "a/*/b.toml",
            "dir/*/*/b.toml",
            "dir #1/b.toml",
            "dir\\x/b.toml",
            "${HOME}/b.toml",
            "日本/b.toml",
            "board-configs/acme-evb.toml",
            "boards/*/evb.toml",
            "my board.toml",
            "b$(X).toml",
            "-b.toml",
            ".b.toml",
            "dir with space/b_1.2+x.toml",
            "boards/\u{202e}x/b.toml",
            "boards/x\ny/b.toml",
            "b\r.toml",
            "b.toml",
        ];
        if self.rng.u8(..10) == 0 {
            self.pick(NAMES).to_string()
        } else {
            "board.toml".to_string()
        }
    }
}
