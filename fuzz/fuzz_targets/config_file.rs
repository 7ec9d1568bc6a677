//! Fuzzes the client config file parser (profiles, URLs, tokens).
#![no_main]

use keydeck::config::ConfigFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(file) = ConfigFile::parse(&text) {
        let _ = file.profile_name(None);
        let _ = file.profile_name(Some("work"));
    }
});
