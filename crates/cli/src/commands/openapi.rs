//! `vision openapi`.

use anyhow::Context;
use std::path::PathBuf;

/// Options of `vision openapi`.
#[derive(Debug, clap::Args)]
pub struct OpenapiArgs {
    /// Where to write the document (`-` for stdout).
    #[arg(long, default_value = "docs/openapi.json")]
    out: PathBuf,
}

/// Writes the OpenAPI document generated from the code.
pub fn run(args: &OpenapiArgs) -> anyhow::Result<()> {
    let json = server::openapi::openapi_json();
    if args.out.as_os_str() == "-" {
        print!("{json}");
    } else {
        std::fs::write(&args.out, json)
            .with_context(|| format!("writing {}", args.out.display()))?;
        eprintln!("wrote {}", args.out.display());
    }
    Ok(())
}
