//! Embeds every certificate file in `roots/` into the crate at compile time.
//!
//! To add a root or intermediate to the bundle, drop its DER (`.der`, `.cer`, `.crt`) or PEM
//! (`.pem`) file into `roots/` and rebuild: this script regenerates the list. File names must be
//! plain ASCII (letters, digits, `.`, `_`, `-`) so they can be spliced into `include_bytes!`.

use std::error::Error;
use std::fmt::Write as _;
use std::path::PathBuf;

const EXTENSIONS: [&str; 4] = ["der", "cer", "crt", "pem"];

fn main() -> Result<(), Box<dyn Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let roots = manifest.join("roots");
    println!("cargo:rerun-if-changed=roots");

    let mut names = Vec::new();
    for entry in std::fs::read_dir(&roots)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return Err(format!("non UTF-8 file name in {}", roots.display()).into());
        };
        let wanted = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if !wanted {
            continue;
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(format!(
                "root file name {name:?} must be ASCII letters, digits, '.', '_' or '-'"
            )
            .into());
        }
        names.push(name.to_owned());
    }
    names.sort();

    let mut out = String::from(
        "/// Certificates embedded from `roots/` by build.rs: (file name, contents).\n",
    );
    out.push_str("pub(crate) static BUNDLED: &[(&str, &[u8])] = &[\n");
    for name in &names {
        writeln!(
            out,
            "    ({name:?}, include_bytes!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/roots/{name}\"))),"
        )?;
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR")?).join("bundled_roots.rs");
    std::fs::write(dest, out)?;
    Ok(())
}
