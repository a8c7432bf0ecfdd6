//! Size strings: `4K`, `64M`, `1G`, `0x1000`, `4096`, all checked.
//!
//! Units are binary (`K` is 1024 bytes) and may be written `K`, `KB`, `KiB` (likewise `M`, `G`, `T`).
//! Hexadecimal values (`0x9000_0000`) take no unit. `_` may separate digits. Every conversion is
//! checked: a value that does not fit in 64 bits is an error, never a wrapped size.

use std::fmt;

/// Why a size string was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SizeError {
    /// The string is empty.
    Empty,
    /// A character that is neither a digit, `_`, nor part of a unit.
    BadDigits(String),
    /// An unknown unit suffix.
    BadUnit(String),
    /// The value does not fit in 64 bits.
    Overflow,
    /// A negative integer.
    Negative,
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty size"),
            Self::BadDigits(s) => write!(f, "`{s}` is not a number"),
            Self::BadUnit(u) => write!(
                f,
                "unknown unit `{u}` (use K, M, G or T, binary units: 1K = 1024 bytes)"
            ),
            Self::Overflow => f.write_str("size does not fit in 64 bits"),
            Self::Negative => f.write_str("size is negative"),
        }
    }
}

impl std::error::Error for SizeError {}

fn digits(s: &str, radix: u32) -> Result<u64, SizeError> {
    let clean: String = s.chars().filter(|&c| c != '_').collect();
    if clean.is_empty() || s.starts_with('_') || s.ends_with('_') {
        return Err(SizeError::BadDigits(s.to_string()));
    }
    let mut value: u64 = 0;
    for c in clean.chars() {
        let d = c
            .to_digit(radix)
            .ok_or_else(|| SizeError::BadDigits(s.to_string()))?;
        value = value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or(SizeError::Overflow)?;
    }
    Ok(value)
}

/// Parses a size string into bytes.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(SizeError::Empty);
    }
    if s.starts_with('-') {
        return Err(SizeError::Negative);
    }
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return digits(hex, 16);
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(SizeError::BadDigits(s.to_string()));
    }
    let value = digits(num, 10)?;
    let shift = match unit.trim_start() {
        "" | "B" => 0,
        "K" | "k" | "KB" | "KiB" => 10,
        "M" | "MB" | "MiB" => 20,
        "G" | "GB" | "GiB" => 30,
        "T" | "TB" | "TiB" => 40,
        other => return Err(SizeError::BadUnit(other.to_string())),
    };
    value.checked_mul(1u64 << shift).ok_or(SizeError::Overflow)
}

/// Parses a TOML integer literal as written (`4096`, `0x1000`, `0o660`, `1_000`) as a size.
pub fn parse_integer_literal(text: &str, radix: u32) -> Result<u64, SizeError> {
    let s = text.trim();
    if s.starts_with('-') {
        return Err(SizeError::Negative);
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let body = match radix {
        16 => s.trim_start_matches("0x"),
        8 => s.trim_start_matches("0o"),
        2 => s.trim_start_matches("0b"),
        _ => s,
    };
    digits(body, radix)
}

/// Formats bytes with the largest binary unit that divides them exactly (`64M`, `4K`, `12345`).
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if bytes != 0 && bytes % (1u64 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// Formats bytes for humans with IEC units (`64 MiB`, `4 KiB`, `12345 B`), exact only.
pub fn format_size_iec(bytes: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes != 0 && bytes % (1u64 << shift) == 0 {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} B")
}

/// Formats an address as `0x` + lower-case hex with `_` every four digits (`0x9000_0000`).
pub fn format_addr(addr: u64) -> String {
    let hex = format!("{addr:x}");
    let mut out = String::with_capacity(hex.len() + hex.len() / 4 + 2);
    for (i, c) in hex.chars().enumerate() {
        if i > 0 && (hex.len() - i) % 4 == 0 {
            out.push('_');
        }
        out.push(c);
    }
    format!("0x{out}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_binary() {
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1_048_576"), Ok(1 << 20));
    }

    #[test]
    fn hex_takes_no_unit() {
        assert_eq!(parse_size("0x1000"), Ok(4096));
        assert_eq!(parse_size("0x9000_0000"), Ok(0x9000_0000));
        assert!(matches!(parse_size("0x10K"), Err(SizeError::BadDigits(_))));
    }

    #[test]
    fn bad_sizes_are_refused() {
        assert_eq!(parse_size(""), Err(SizeError::Empty));
        assert_eq!(parse_size("-4K"), Err(SizeError::Negative));
        assert_eq!(parse_size("4Q"), Err(SizeError::BadUnit("Q".into())));
        assert!(matches!(parse_size("M"), Err(SizeError::BadDigits(_))));
        assert_eq!(parse_size("16777216T"), Err(SizeError::Overflow));
        assert_eq!(
            parse_size("0x1_0000_0000_0000_0000"),
            Err(SizeError::Overflow)
        );
    }

    #[test]
    fn integer_literals_follow_their_radix() {
        assert_eq!(parse_integer_literal("0o660", 8), Ok(0o660));
        assert_eq!(parse_integer_literal("0x1000", 16), Ok(4096));
        assert_eq!(parse_integer_literal("4_096", 10), Ok(4096));
        assert_eq!(parse_integer_literal("-1", 10), Err(SizeError::Negative));
    }

    proptest::proptest! {
        #[test]
        fn formatted_sizes_parse_back(bytes in proptest::prelude::any::<u64>()) {
            proptest::prop_assert_eq!(parse_size(&format_size(bytes)), Ok(bytes));
            proptest::prop_assert_eq!(parse_size(&format_addr(bytes)), Ok(bytes));
        }

        #[test]
        fn parsing_never_panics(text in "\\PC{0,24}") {
            let _ = parse_size(&text);
        }
    }

    #[test]
    fn formatting_is_exact() {
        assert_eq!(format_size(64 << 20), "64M");
        assert_eq!(format_size(4096 * 3), "12K");
        assert_eq!(format_size(1000), "1000");
        assert_eq!(format_size_iec(1 << 30), "1 GiB");
        assert_eq!(format_addr(0x9000_0000), "0x9000_0000");
        assert_eq!(format_addr(0x1_0000_0000), "0x1_0000_0000");
        assert_eq!(format_addr(0), "0x0");
    }
}
