//! Fuzzes the expiry parser (`YYYY-MM-DD`, `7d`, `1y`, …) in a few time zones;
//! an accepted expiry must lie in the future.
#![no_main]

use chrono::{FixedOffset, TimeZone, Utc};
use keydeck::key::parse_expiry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let now = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
    for offset_hours in [-12, 0, 5, 14] {
        let tz = FixedOffset::east_opt(offset_hours * 3600).expect("a valid offset");
        if let Ok(Some(at)) = parse_expiry(&input, now, &tz) {
            assert!(at > now);
        }
    }
});
