//! Compiles proto/ with the protoc shipped by protoc-bin-vendored, so a build
//! needs no system protoc, writes the descriptor set used by reflection, and
//! generates proto3-JSON serde impls (pbjson) for the command-line client.

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
    Ok(())
}
