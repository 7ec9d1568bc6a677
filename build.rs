//! Build-time switches for the test suites that need outside services:
//! `keydeck_pg` when `KEYDECK_TEST_POSTGRES_URL` is set, `keydeck_nginx` when
//! nginx is on the PATH (or `KEYDECK_REQUIRE_NGINX` is set), `keydeck_openssh`
//! when `ssh` and `ssh-keygen` are (or `KEYDECK_REQUIRE_OPENSSH` is set).
//! Without them those tests are reported as ignored, with the reason, instead
//! of passing.

use std::path::PathBuf;

fn main() {
    println!("cargo:rustc-check-cfg=cfg(keydeck_pg)");
    println!("cargo:rustc-check-cfg=cfg(keydeck_nginx)");
    println!("cargo:rustc-check-cfg=cfg(keydeck_openssh)");
    for var in [
        "KEYDECK_TEST_POSTGRES_URL",
        "KEYDECK_REQUIRE_NGINX",
        "KEYDECK_REQUIRE_OPENSSH",
        "PATH",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    // `sqlx::migrate!` embeds these at build time but does not track them.
    println!("cargo:rerun-if-changed=migrations");
    if std::env::var_os("KEYDECK_TEST_POSTGRES_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo:rustc-cfg=keydeck_pg");
    }
    if std::env::var_os("KEYDECK_REQUIRE_NGINX").is_some() || nginx_on_path() {
        println!("cargo:rustc-cfg=keydeck_nginx");
    }
    if std::env::var_os("KEYDECK_REQUIRE_OPENSSH").is_some()
        || (on_path("ssh") && on_path("ssh-keygen"))
    {
        println!("cargo:rustc-cfg=keydeck_openssh");
    }
}

fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| dir.join(program).is_file())
}

fn nginx_on_path() -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"].map(PathBuf::from))
        .any(|dir| dir.join("nginx").is_file())
}
