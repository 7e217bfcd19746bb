//! Compiles `breakglass/v1/*.proto` with protox (a pure-Rust protobuf compiler), so
//! the workspace builds on a machine with no `protoc` installed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["breakglass/v1/breakglass.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let descriptors = protox::compile(files, ["."])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("breakglass_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
