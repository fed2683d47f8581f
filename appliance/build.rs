//! Records the git commit the appliance is built from, for the `appliance_build_info` metric.
//! Outside a git checkout (a source tarball, a registry build) the hash is `unknown`.

use std::process::Command;

fn main() {
    let hash = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=APPLIANCE_GIT_HASH={hash}");
    // Rebuild when HEAD moves (a commit, a checkout): HEAD itself and the branch file it
    // names. Not the index, which changes on every `git add` and would rebuild for nothing.
    if let Ok(head) = std::fs::read_to_string("../.git/HEAD") {
        println!("cargo:rerun-if-changed=../.git/HEAD");
        if let Some(r) = head.trim().strip_prefix("ref: ") {
            let path = format!("../.git/{r}");
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
