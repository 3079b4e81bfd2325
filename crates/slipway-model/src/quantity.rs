//! Kubernetes resource quantities (`512Mi`, `1.5G`, `250m`), as used in `computeResources`.

/// Parses a quantity into its value in base units times `scale` (1 for bytes, 1000 for
/// millicores), rounding up as the kubelet does. `None` for malformed or negative input.
pub fn parse(text: &str, scale: u64) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number = number.strip_prefix('+').unwrap_or(number);
    if number.is_empty() || number.starts_with('.') && number.len() == 1 {
        return None;
    }
    // Decimal exponents first (`1e3`), then the binary and decimal suffixes.
    let (mult_num, mult_den): (u128, u128) = match suffix {
        "" => (1, 1),
        "m" => (1, 1000),
        "k" => (1000, 1),
        "M" => (1000u128.pow(2), 1),
        "G" => (1000u128.pow(3), 1),
        "T" => (1000u128.pow(4), 1),
        "P" => (1000u128.pow(5), 1),
        "E" => (1000u128.pow(6), 1),
        "Ki" => (1 << 10, 1),
        "Mi" => (1 << 20, 1),
        "Gi" => (1 << 30, 1),
        "Ti" => (1 << 40, 1),
        "Pi" => (1 << 50, 1),
        "Ei" => (1 << 60, 1),
        s if s.starts_with(['e', 'E']) => {
            let exp: u32 = s[1..].parse().ok()?;
            (10u128.checked_pow(exp)?, 1)
        }
        _ => return None,
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if frac.contains('.') || frac.len() > 18 {
        return None;
    }
    let digits = format!("{int}{frac}");
    let mantissa: u128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let den = 10u128.checked_pow(frac.len() as u32)? * mult_den;
    let num = mantissa
        .checked_mul(mult_num)?
        .checked_mul(u128::from(scale))?;
    u64::try_from(num.div_ceil(den)).ok()
}

/// Bytes of a memory quantity.
pub fn bytes(text: &str) -> Option<u64> {
    parse(text, 1)
}

/// Millicores of a CPU quantity.
pub fn millicores(text: &str) -> Option<u64> {
    parse(text, 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn memory_and_cpu() {
        assert_eq!(bytes("512Mi"), Some(512 << 20));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(bytes("1.5Gi"), Some(3 << 29));
        assert_eq!(bytes("128974848"), Some(128_974_848));
        assert_eq!(bytes("129e6"), Some(129_000_000));
        assert_eq!(millicores("250m"), Some(250));
        assert_eq!(millicores("0.5"), Some(500));
        assert_eq!(millicores("2"), Some(2000));
        assert_eq!(millicores("1.0005"), Some(1001));
        for bad in ["", "Mi", "-1", "1.2.3", "1Xi", "."] {
            assert_eq!(bytes(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            let _ = bytes(&s);
            let _ = millicores(&s);
        }

        #[test]
        fn whole_mebibytes(n in 0u64..1_000_000) {
            prop_assert_eq!(bytes(&format!("{n}Mi")), Some(n << 20));
        }
    }
}
