//! Generates the gRPC code from `stella/**.proto`. protox parses the files in
//! Rust, so the build needs no `protoc` binary.

use std::path::{Path, PathBuf};

const ATTESTOR_PROTO: &str = "stella/attestor/v1/attestor.proto";
const GATE_PROTO: &str = "stella/gate/v1/gate.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [ATTESTOR_PROTO, GATE_PROTO];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    // Each service gets its own encoded descriptor set, so its server's reflection and metrics
    // list only the methods that server serves.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    write_descriptor_set(ATTESTOR_PROTO, &out_dir.join("attestor_descriptor.bin"))?;
    write_descriptor_set(GATE_PROTO, &out_dir.join("gate_descriptor.bin"))?;

    let descriptors = protox::compile(files, ["."])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}

fn write_descriptor_set(proto: &str, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let descriptors = protox::compile([proto], ["."])?;
    std::fs::write(path, prost::Message::encode_to_vec(&descriptors))?;
    Ok(())
}
