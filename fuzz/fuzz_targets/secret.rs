//! Fuzzes the secret parser: any bytes, under the default, a user-token and a
//! custom prefix; a string that parses must be exactly a well-formed secret.
#![no_main]

use keydeck::key::SecretFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    for format in [
        SecretFormat::default(),
        SecretFormat::user_token(),
        SecretFormat::new("acme_test_").expect("a valid prefix"),
    ] {
        if let Ok(secret) = format.parse(&input) {
            assert_eq!(secret.expose(), input);
            assert_eq!(input.len(), format.secret_len());
            let _ = format.display_prefix(&secret);
        }
    }
    // The prefix setting itself is operator input.
    if let Ok(format) = SecretFormat::new(&input) {
        let secret = format.generate();
        assert!(format.parse(secret.expose()).is_ok());
    }
});
