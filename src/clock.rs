//! Server time: microseconds since the Unix epoch, printed as RFC 3339 UTC with exactly
//! six fractional digits and `Z` (D8), so timestamps also compare correctly as strings.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> i64 {
    let now = OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000) as i64
}

/// `2026-02-04T10:11:12.123456Z`; out-of-range values clamp to the epoch.
pub fn format_micros(micros: i64) -> String {
    let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.microsecond()
    )
}

/// Parses any RFC 3339 instant (offsets allowed) into epoch microseconds.
pub fn parse_rfc3339_micros(s: &str) -> Option<i64> {
    let dt = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(dt.unix_timestamp_nanos() / 1_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_six_digits_and_z() {
        assert_eq!(format_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            format_micros(1_770_199_872_123_456),
            "2026-02-04T10:11:12.123456Z"
        );
    }

    #[test]
    fn parses_offsets_and_round_trips() {
        let m = 1_770_199_872_123_456;
        assert_eq!(parse_rfc3339_micros(&format_micros(m)), Some(m));
        assert_eq!(
            parse_rfc3339_micros("2026-02-04T11:11:12.123456+01:00"),
            Some(m)
        );
        assert_eq!(parse_rfc3339_micros("yesterday"), None);
    }
}
