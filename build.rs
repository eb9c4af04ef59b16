//! Compiles proto/ with the protoc shipped by protoc-bin-vendored, so a build
//! needs no system protoc, and writes the descriptor set used by reflection.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("meetings_descriptor.bin"))
        .compile_with_config(config, &["proto/meetings/v1/meetings.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
