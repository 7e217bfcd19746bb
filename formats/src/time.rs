//! Times as PASETO claims carry them (RFC 3339), and as messages show them to
//! people: RFC 3339 UTC plus how far from now (`2026-12-02T05:10:00Z, in 23m`).

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `t` (seconds since the epoch) as RFC 3339 UTC; `None` if out of range.
pub fn rfc3339(t: u64) -> Option<String> {
    let secs = i64::try_from(t).ok()?;
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
}

/// Seconds since the epoch of an RFC 3339 time; `None` if it does not parse or is before 1970.
pub fn unix(s: &str) -> Option<u64> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .and_then(|d| u64::try_from(d.unix_timestamp()).ok())
}

/// `t` for a message read by a person at `now`: RFC 3339 UTC, then how far
/// away it is (`2026-12-02T05:10:00Z, in 23m`, `…, 12m ago`, `…, now`). Every
/// time in an error or a status line goes through here, so none shows as bare
/// Unix seconds.
pub fn when(t: u64, now: u64) -> String {
    let at = rfc3339(t).unwrap_or_else(|| format!("{t} (Unix seconds)"));
    format!("{at}, {}", relative(t, now))
}

/// `in 23m`, `12m ago`, `now`: `t` seen from `now`, in at most two units.
pub fn relative(t: u64, now: u64) -> String {
    if t == now {
        "now".to_string()
    } else if t > now {
        format!("in {}", span(t - now))
    } else {
        format!("{} ago", span(now - t))
    }
}

/// A number of seconds in at most two units: `45s`, `23m`, `1h 5m`, `3d 2h`.
pub fn span(secs: u64) -> String {
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let mut parts = Vec::new();
    let mut left = secs;
    for (size, name) in units {
        if left >= size && parts.len() < 2 {
            parts.push(format!("{}{name}", left / size));
            left %= size;
        } else if !parts.is_empty() {
            // Stop after the first unit that is zero: "1h 5m", never "1h 0m 5s".
            break;
        }
    }
    if parts.is_empty() {
        "0s".to_string()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_reads_as_utc_plus_relative() {
        let t = 1_800_000_000;
        assert_eq!(when(t, t - 23 * 60), "2027-01-15T08:00:00Z, in 23m");
        assert_eq!(when(t, t + 12 * 60 + 5), "2027-01-15T08:00:00Z, 12m 5s ago");
        assert_eq!(when(t, t), "2027-01-15T08:00:00Z, now");
        assert_eq!(span(3_600 + 5), "1h");
        assert_eq!(span(90_000), "1d 1h");
        assert_eq!(span(0), "0s");
    }

    #[test]
    fn round_trip() {
        let s = rfc3339(1_800_000_000).unwrap_or_default();
        assert_eq!(s, "2027-01-15T08:00:00Z");
        assert_eq!(unix(&s), Some(1_800_000_000));
        assert_eq!(unix("yesterday"), None);
    }
}
