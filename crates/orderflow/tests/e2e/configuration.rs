//! Configuration as an operator meets it: every problem reported at once by a process that
//! refuses to start, and a reference (docs/configuration.md) generated from the flags.

use orderflow::config_reference::{BEGIN, END, reference};
use std::path::Path;
use std::process::Command;

/// `orderflow serve` with only `env`: its exit code and what it printed.
fn serve_with(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .arg("serve")
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs");
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn every_bad_value_is_reported_at_once_and_nothing_starts() {
    let (code, stderr) = serve_with(&[
        ("HTTP_PORT", "99999"),
        ("PAYMENT_DELAY_MS", "fast"),
        ("AUTH_MODE", "maybe"),
        ("ADMIN_API_KEY_FILE", "/nonexistent/admin-key"),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    for named in
        ["HTTP_PORT=99999", "PAYMENT_DELAY_MS=fast", "AUTH_MODE=maybe", "ADMIN_API_KEY_FILE"]
    {
        assert!(stderr.contains(named), "{named} missing from:\n{stderr}");
    }
    assert!(stderr.contains("4 problems"), "{stderr}");
}

#[test]
fn settings_that_cannot_work_together_are_reported_at_once() {
    let (code, stderr) = serve_with(&[
        ("AUTH_MODE", "jwt"),
        ("JWT_HS256_SECRET", "too-short"),
        ("ADMIN_API_KEY", "short"),
        ("PAYMENT_WEBHOOK_SECRET", "whsec_0123456789abcdef0123456789abcdef"),
        ("TEMPORAL_HOST", "temporal"),
        ("TEMPORAL_ADDRESS", "temporal:7233"),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    for named in [
        "JWT_HS256_SECRET must be at least 32 bytes",
        "ADMIN_API_KEY must be at least",
        "PAYMENT_WEBHOOK_SECRET is set but PAYMENT_PROVIDER_URL is not",
        "TEMPORAL_ADDRESS and TEMPORAL_HOST/TEMPORAL_PORT are both set",
    ] {
        assert!(stderr.contains(named), "{named:?} missing from:\n{stderr}");
    }
}

/// docs/configuration.md holds the reference generated from the flags' definitions; with
/// `UPDATE_DOCS=1` (`make config-docs`) this test rewrites it instead of comparing.
#[test]
fn the_configuration_reference_is_the_flags_own() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    let doc = std::fs::read_to_string(&path).expect("docs/configuration.md");
    let start = doc.find(BEGIN).expect("docs/configuration.md has the generated reference's start");
    let end = doc[start..].find(END).map(|at| start + at + END.len()).expect("and its end");
    let generated = reference();
    let generated = generated.trim_end();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, format!("{}{generated}{}", &doc[..start], &doc[end..]))
            .expect("docs/configuration.md written");
        return;
    }
    if doc[start..end] != *generated {
        let _ = std::fs::write(crate::support::artifacts().join("configuration.md"), generated);
        panic!(
            "docs/configuration.md is not what the flags say: run `make config-docs` (the \
             generated text is in test-artifacts/configuration.md)"
        );
    }
}
