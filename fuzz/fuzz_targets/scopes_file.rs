//! Fuzzes the `--scopes-file` catalogue parser; an accepted catalogue always
//! ends with Full Access.
#![no_main]

use keydeck::key::Catalog;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(catalog) = Catalog::from_toml(&text) {
        let last = catalog.scopes().last().expect("never empty");
        assert_eq!(last.id, "full_access");
    }
});
