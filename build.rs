//! Compiles proto/ with the protoc shipped by protoc-bin-vendored, so a build
//! needs no system protoc, writes the descriptor set used by reflection, and
//! generates proto3-JSON serde impls (pbjson) for the command-line client.
//! It also turns the registry tables in docs/registry/ (organisations, and
//! the days former states existed) into Rust tables, so that the documented
//! table is the one the service checks against, and a malformed row fails
//! the build instead of a request.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("meetings_descriptor.bin");
    let mut config = prost_build::Config::new();
    config
        .protoc_executable(protoc_bin_vendored::protoc_bin_path()?)
        // Well-known types from pbjson-types, which map to proto3 JSON.
        .compile_well_known_types()
        .extern_path(".google.protobuf", "::pbjson_types");
    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptor_path)
        .compile_with_config(config, &["proto/meetings/v1/meetings.proto"], &["proto"])?;
    let descriptors = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .build(&[".meetings.v1"])?;
    println!("cargo:rerun-if-changed=proto");
    // sqlx::migrate! embeds migrations/ at compile time; without this line
    // an incremental build would keep the old set.
    println!("cargo:rerun-if-changed=migrations");
    registry(&out_dir)?;
    Ok(())
}

/// The rows of the Markdown table in `path`, below its header and rule, as
/// trimmed cells.
fn table_rows(path: &str) -> Result<Vec<Vec<String>>, Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={path}");
    let text = std::fs::read_to_string(path)?;
    let rows: Vec<Vec<String>> = text
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| {
            l.trim()
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect();
    if rows.len() < 3 {
        return Err(format!("{path}: no table rows").into());
    }
    Ok(rows[2..].to_vec())
}

/// A `YYYY-MM-DD` cell as the number YYYYMMDD, `None` for an empty cell.
fn day(path: &str, cell: &str) -> Result<Option<u32>, Box<dyn std::error::Error>> {
    if cell.is_empty() {
        return Ok(None);
    }
    let b = cell.as_bytes();
    let ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !ok {
        return Err(format!("{path}: {cell:?} is not a date YYYY-MM-DD").into());
    }
    Ok(Some(cell.replace('-', "").parse()?))
}

fn checked_code(path: &str, cell: &str) -> Result<String, Box<dyn std::error::Error>> {
    let ok = !cell.is_empty()
        && cell.len() <= 12
        && cell
            .bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if !ok {
        return Err(
            format!("{path}: {cell:?} is not a code of upper-case letters and digits").into(),
        );
    }
    Ok(cell.to_owned())
}

fn registry(out_dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    use std::fmt::Write;
    let mut out = String::new();

    let path = "docs/registry/organizations.md";
    out.push_str("pub(crate) static ORGANIZATIONS: &[Organization] = &[\n");
    for row in table_rows(path)? {
        let [code_cell, name, founded, dissolved, aliases, source] = &row[..] else {
            return Err(format!("{path}: row {row:?} does not have 6 cells").into());
        };
        let code = checked_code(path, code_cell)?;
        let founded = day(path, founded)?.ok_or(format!("{path}: {code} has no founding date"))?;
        let dissolved = day(path, dissolved)?;
        let aliases = aliases
            .split_whitespace()
            .map(|a| checked_code(path, a))
            .collect::<Result<Vec<_>, _>>()?;
        if name.is_empty() || !source.starts_with("https://") {
            return Err(format!("{path}: {code} needs a name and an https source").into());
        }
        writeln!(
            out,
            "    Organization {{ code: {code:?}, key: \"org:{code}\", name: {name:?}, founded: {founded}, dissolved: {dissolved:?}, aliases: &{aliases:?} }},"
        )?;
    }
    out.push_str("];\n");

    let path = "docs/registry/former-states.md";
    out.push_str("pub(crate) static FORMER_STATES: &[FormerState] = &[\n");
    for row in table_rows(path)? {
        let [code_cell, name, from, until, source] = &row[..] else {
            return Err(format!("{path}: row {row:?} does not have 5 cells").into());
        };
        let code = checked_code(path, code_cell)?;
        if code.len() != 4 || name.is_empty() || !source.starts_with("https://") {
            return Err(format!(
                "{path}: {code} needs a 4-letter code, a name and an https source"
            )
            .into());
        }
        writeln!(
            out,
            "    FormerState {{ code: {code:?}, name: {name:?}, from: {:?}, until: {:?} }},",
            day(path, from)?,
            day(path, until)?
        )?;
    }
    out.push_str("];\n");
    std::fs::write(out_dir.join("registry.rs"), out)?;
    Ok(())
}
