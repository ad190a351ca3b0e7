//! Generates the server side of the services we implement, and their clients (which
//! `chronicle-bench` uses to drive a server over raw gRPC). Message types are not generated
//! here: every `.temporal`, `.google` and `.grpc` path resolves to the types that
//! `temporalio-protos` already compiled, so the server and the SDKs share one set of structs.

use prost::Message;
use prost_types::FileDescriptorSet;

/// The descriptor files whose services we serve; everything else in the set is reached
/// through `extern_path`.
const SERVICE_FILES: &[&str] = &[
    "temporal/api/workflowservice/v1/service.proto",
    "temporal/api/operatorservice/v1/service.proto",
    "health/v1/health.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::var("DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH")?;
    println!("cargo:rerun-if-changed={path}");
    let mut set = FileDescriptorSet::decode(std::fs::read(&path)?.as_slice())?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("rpcs.rs"), rpc_table(&set)?)?;
    set.file
        .retain(|f| SERVICE_FILES.iter().any(|s| f.name().ends_with(s)));
    if set.file.len() != SERVICE_FILES.len() {
        let names: Vec<_> = set.file.iter().map(|f| f.name().to_owned()).collect();
        return Err(format!("service descriptors missing; found {names:?}").into());
    }
    tonic_prost_build::configure()
        .build_client(true)
        // The clients carry the protos' comments as docs, some of which clippy finds badly
        // indented (the server traits' copies are not linted). The allow has to be an outer
        // attribute next to tonic's inner one, which is a lint of its own.
        .client_mod_attribute(
            ".",
            "#[allow(clippy::doc_lazy_continuation, clippy::mixed_attributes_style)]",
        )
        .build_server(true)
        .generate_default_stubs(true)
        .extern_path(".temporal", "::temporalio_protos::temporal")
        .extern_path(".google.rpc", "::temporalio_protos::google::rpc")
        .extern_path(".grpc", "::temporalio_protos::grpc")
        .compile_fds(set)?;
    compile_internal()?;
    for file in [
        "temporal.api.workflowservice.v1.rs",
        "temporal.api.operatorservice.v1.rs",
    ] {
        name_unimplemented_rpcs(&out_dir.join(file))?;
    }
    Ok(())
}

/// Chronicle's own node-to-node protocol (`proto/`), compiled without protoc.
fn compile_internal() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let set = protox::compile(["chronicle/internal/v1/node.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(set)?;
    Ok(())
}

/// The RPCs of the services we serve, each with the field number of its request's
/// `namespace` (0 when it has none), so the frontend can find a call's namespace in its bytes
/// before decoding it (rate limits, authorization) without a hand-kept list.
fn rpc_table(set: &FileDescriptorSet) -> Result<String, Box<dyn std::error::Error>> {
    let messages: std::collections::HashMap<String, &prost_types::DescriptorProto> = set
        .file
        .iter()
        .flat_map(|f| {
            f.message_type
                .iter()
                .map(move |m| (format!(".{}.{}", f.package(), m.name()), m))
        })
        .collect();
    let mut table = String::from("&[\n");
    for file in set
        .file
        .iter()
        .filter(|f| SERVICE_FILES.iter().any(|s| f.name().ends_with(s)))
    {
        for service in &file.service {
            for method in &service.method {
                let input = messages
                    .get(method.input_type())
                    .ok_or_else(|| format!("no message {}", method.input_type()))?;
                let namespace_field = input
                    .field
                    .iter()
                    .find(|f| f.name() == "namespace")
                    .map_or(0, |f| f.number());
                table.push_str(&format!(
                    "    Rpc {{ path: \"/{}.{}/{}\", method: \"{}\", namespace_field: {} }},\n",
                    file.package(),
                    service.name(),
                    method.name(),
                    method.name(),
                    namespace_field
                ));
            }
        }
    }
    table.push(']');
    Ok(table)
}

/// tonic's default stubs all say "Not yet implemented"; a client deserves to know which RPC
/// it called, so each stub's message is rewritten to name its method.
fn name_unimplemented_rpcs(path: &std::path::Path) -> std::io::Result<()> {
    const STUB: &str = "tonic::Status::unimplemented(\"Not yet implemented\")";
    let code = std::fs::read_to_string(path)?;
    let mut out = String::with_capacity(code.len());
    let mut rest = code.as_str();
    while let Some(at) = rest.find(STUB) {
        let (before, after) = rest.split_at(at);
        let method = before
            .rfind("async fn ")
            .map(|i| &before[i + 9..])
            .and_then(|s| s.split('(').next())
            .unwrap_or("this RPC");
        out.push_str(before);
        out.push_str(&format!(
            "tonic::Status::unimplemented(\"{} is not implemented by Chronicle\")",
            pascal_case(method)
        ));
        rest = &after[STUB.len()..];
    }
    out.push_str(rest);
    std::fs::write(path, out)
}

/// `describe_namespace` -> `DescribeNamespace`, the name the RPC has on the wire.
fn pascal_case(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}
