//! RFC 3339 times as PASETO claims carry them.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let s = rfc3339(1_800_000_000).unwrap_or_default();
        assert_eq!(s, "2027-01-15T08:00:00Z");
        assert_eq!(unix(&s), Some(1_800_000_000));
        assert_eq!(unix("yesterday"), None);
    }
}
