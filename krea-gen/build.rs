//! Generates the raw client from the vendored description `spec/krea-api.json` (already
//! normalized by `cargo xtask spec refresh`; nothing is read from outside this package):
//! progenitor, prettyplease -> $OUT_DIR/codegen.rs; the model catalog as static data ->
//! $OUT_DIR/catalog.rs and the per-model body decoders -> $OUT_DIR/bodies.rs.

use std::path::PathBuf;

use progenitor::{GenerationSettings, Generator, InterfaceStyle, TagStyle, TypeImpl};

fn fail(message: impl std::fmt::Display) -> ! {
    // Cargo shows a failed build script's stderr; a panic would bury the message in a backtrace.
    eprintln!("error: {message}");
    std::process::exit(1);
}

fn main() {
    let manifest = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let spec_path = manifest.join("spec").join("krea-api.json");
    println!("cargo:rerun-if-changed={}", spec_path.display());

    let text = std::fs::read_to_string(&spec_path).unwrap_or_else(|e| {
        fail(format!(
            "cannot read the vendored description {}: {e}",
            spec_path.display()
        ))
    });
    let document: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| fail(format!("{} is not JSON: {e}", spec_path.display())));
    let models = krea_openapi::catalog::extract(&document)
        .unwrap_or_else(|e| fail(format!("{}: {e}", spec_path.display())));
    let spec: openapiv3::OpenAPI = serde_json::from_value(document)
        .unwrap_or_else(|e| fail(format!("{} is not OpenAPI 3.0: {e}", spec_path.display())));
    let mut settings = GenerationSettings::new();
    settings
        // Positional: the builder style doubles the generated code (and its compile time) for
        // an escape hatch; the `krea` crate does not call the generated client.
        .with_interface(InterfaceStyle::Positional)
        .with_tag(TagStyle::Merged)
        .with_derive("PartialEq")
        .with_inner_type(quote::quote!(crate::auth::ApiAuth))
        // Krea may add job states; the hand-written JobStatus keeps unknown ones instead of
        // failing to decode the whole job.
        .with_replacement(
            "JobStatus",
            "crate::JobStatus",
            [TypeImpl::Display, TypeImpl::FromStr].into_iter(),
        );
    let tokens = Generator::new(&settings)
        .generate_tokens(&spec)
        .unwrap_or_else(|e| {
            fail(format!(
                "progenitor rejected the normalized {}: {e}",
                spec_path.display()
            ))
        });
    let file =
        syn::parse2(tokens).unwrap_or_else(|e| fail(format!("generated code does not parse: {e}")));
    let code = prettyplease::unparse(&file);

    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("codegen.rs"), code)
        .unwrap_or_else(|e| fail(format!("write codegen.rs: {e}")));
    std::fs::write(
        out.join("catalog.rs"),
        krea_openapi::emit::catalog_source(&models),
    )
    .unwrap_or_else(|e| fail(format!("write catalog.rs: {e}")));
    std::fs::write(out.join("bodies.rs"), body_dispatch(&models))
        .unwrap_or_else(|e| fail(format!("write bodies.rs: {e}")));
}

/// `decode_body(operation_id, json)`: decodes a generation body as its generated type (typify
/// names it `{OpId}Body`), so a server can check requests with exactly the types clients send.
fn body_dispatch(models: &[krea_openapi::catalog::ModelSpec]) -> String {
    let mut arms = String::new();
    let mut impls = String::new();
    for m in models {
        let ty = format!("{}Body", krea_openapi::opid::pascal(&m.operation_id));
        impls.push_str(&format!(
            "impl GenerationBody for crate::types::{ty} {{\n    const PATH: &'static str = {:?};\n}}\n",
            m.path
        ));
        arms.push_str(&format!(
            "        {:?} => Some(decode::<crate::types::{ty}>(body)),\n",
            m.operation_id
        ));
    }
    format!(
        "/// Decodes `body` as the generated request type of the generation operation `operation_id`;\n\
         /// `None` for other operations. The error is serde's message (it names the field).\n\
         pub fn decode_body(operation_id: &str, body: &serde_json::Value) -> Option<Result<(), String>> {{\n\
         \x20   match operation_id {{\n{arms}        _ => None,\n    }}\n}}\n\n{impls}"
    )
}
