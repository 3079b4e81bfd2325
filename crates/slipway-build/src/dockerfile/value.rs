//! Flag and argument values Docker checks: octal modes, networks, ports, Go durations,
//! retries and boolean flags.

use crate::dockerfile::Network;

/// Why a value is refused; reads after "failed to read the value: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// `--chmod=rwx`.
    #[error("`{0}` is not an octal mode such as 755 or 0644")]
    NotOctal(String),
    /// `--network=bridge`.
    #[error("`{0}` is not a network mode: use default, none or host")]
    Network(String),
    /// `EXPOSE 80/tpc`.
    #[error("`{0}` is not a protocol: use tcp, udp or sctp")]
    Protocol(String),
    /// `EXPOSE http`.
    #[error("`{0}` is not a port number (0-65535) or range such as 8000-8010")]
    Port(String),
    /// `EXPOSE 8080:80`.
    #[error("`{0}` maps a host port, which EXPOSE cannot do: expose the container port only")]
    HostPort(String),
    /// `--interval=5x`.
    #[error("`{0}` is not a duration such as 30s, 1m30s or 500ms")]
    Duration(String),
    /// `--interval=-1s` or `--interval=10us`.
    #[error("`{0}` must be 0 (the default) or at least 1ms")]
    DurationRange(String),
    /// `--retries=x`.
    #[error("`{0}` is not a number of retries")]
    Retries(String),
    /// `--link=maybe`.
    #[error("`{0}` is not true or false")]
    Bool(String),
}

/// `--chmod=`: octal digits (at most 4, as `0755`).
pub fn octal_mode(text: &str) -> Result<u32, ValueError> {
    let bad = || ValueError::NotOctal(text.to_owned());
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(bad());
    }
    u32::from_str_radix(text, 8).map_err(|_| bad())
}

/// `--network=`.
pub fn network(text: &str) -> Result<Network, ValueError> {
    match text {
        "default" => Ok(Network::Default),
        "none" => Ok(Network::None),
        "host" => Ok(Network::Host),
        other => Err(ValueError::Network(other.to_owned())),
    }
}

/// A boolean flag: absent value means true.
pub fn flag_bool(value: Option<&str>) -> Result<bool, ValueError> {
    match value {
        None | Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(ValueError::Bool(other.to_owned())),
    }
}

/// One EXPOSE word: `80`, `53/udp`, `8000-8002/tcp` → `80/tcp`, ... (each port of a range).
pub fn ports(word: &str) -> Result<Vec<String>, ValueError> {
    let (port, proto) = match word.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (word, "tcp".to_owned()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(ValueError::Protocol(proto));
    }
    if port.contains(':') {
        return Err(ValueError::HostPort(word.to_owned()));
    }
    let number = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|_| p.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| ValueError::Port(word.to_owned()))
    };
    let (first, last) = match port.split_once('-') {
        Some((a, b)) => (number(a)?, number(b)?),
        None => {
            let p = number(port)?;
            (p, p)
        }
    };
    if first > last {
        return Err(ValueError::Port(word.to_owned()));
    }
    Ok((first..=last).map(|p| format!("{p}/{proto}")).collect())
}

/// A Go duration (`1h2m3.5s`, `300ms`, `0`) in nanoseconds, for HEALTHCHECK: 0 or ≥ 1ms.
pub fn health_duration(text: &str) -> Result<i64, ValueError> {
    let nanos = go_duration(text).ok_or_else(|| ValueError::Duration(text.to_owned()))?;
    if nanos < 0 || (nanos > 0 && nanos < 1_000_000) {
        return Err(ValueError::DurationRange(text.to_owned()));
    }
    Ok(nanos)
}

/// `--retries=`.
pub fn retries(text: &str) -> Result<u32, ValueError> {
    text.parse()
        .map_err(|_| ValueError::Retries(text.to_owned()))
}

/// Go's `time.ParseDuration`: signed sequence of decimal numbers with units.
pub fn go_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)]
    let nanos = total.round() as i64;
    Some(if negative { -nanos } else { nanos })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(octal_mode("755"), Ok(0o755));
        assert_eq!(octal_mode("0644"), Ok(0o644));
        for bad in ["", "8", "rwx", "07555", "-1"] {
            assert!(octal_mode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn exposed_ports() {
        assert_eq!(ports("80"), Ok(vec!["80/tcp".into()]));
        assert_eq!(ports("53/UDP"), Ok(vec!["53/udp".into()]));
        assert_eq!(
            ports("8000-8002"),
            Ok(vec![
                "8000/tcp".into(),
                "8001/tcp".into(),
                "8002/tcp".into()
            ])
        );
        assert_eq!(ports("80/tpc"), Err(ValueError::Protocol("tpc".into())));
        assert_eq!(ports("http"), Err(ValueError::Port("http".into())));
        assert_eq!(ports("70000"), Err(ValueError::Port("70000".into())));
        assert_eq!(ports("9-1"), Err(ValueError::Port("9-1".into())));
        assert_eq!(
            ports("8080:80"),
            Err(ValueError::HostPort("8080:80".into()))
        );
    }

    #[test]
    fn durations() {
        let cases: &[(&str, Option<i64>)] = &[
            ("0", Some(0)),
            ("30s", Some(30_000_000_000)),
            ("1m30s", Some(90_000_000_000)),
            ("1.5h", Some(5_400_000_000_000)),
            ("300ms", Some(300_000_000)),
            ("10us", Some(10_000)),
            ("-2s", Some(-2_000_000_000)),
            ("5", None),
            ("5x", None),
            ("", None),
            ("s", None),
            ("1..2s", None),
        ];
        for (text, want) in cases {
            assert_eq!(go_duration(text), *want, "{text}");
        }
        assert_eq!(
            health_duration("10us"),
            Err(ValueError::DurationRange("10us".into()))
        );
        assert_eq!(
            health_duration("-1s"),
            Err(ValueError::DurationRange("-1s".into()))
        );
        assert_eq!(health_duration("0"), Ok(0));
    }

    #[test]
    fn networks_and_bools() {
        assert_eq!(network("none"), Ok(Network::None));
        assert_eq!(network("bridge"), Err(ValueError::Network("bridge".into())));
        assert_eq!(flag_bool(None), Ok(true));
        assert_eq!(flag_bool(Some("false")), Ok(false));
        assert!(flag_bool(Some("yes")).is_err());
    }
}
