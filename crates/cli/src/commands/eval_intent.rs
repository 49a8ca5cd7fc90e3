//! `vision eval-intent`: accuracy of the chat's intent parser on a file of utterances.

use anyhow::Context;
use std::path::PathBuf;

/// Options of `vision eval-intent`.
#[derive(Debug, clap::Args)]
pub struct EvalIntentArgs {
    /// Cases, JSON Lines (see `crates/intent/eval/utterances.jsonl`).
    file: PathBuf,
    /// Do not list the wrong fields.
    #[arg(long)]
    quiet: bool,
    /// Exit with an error when the overall field accuracy (0–1) is below this.
    #[arg(long)]
    fail_under: Option<f64>,
}

/// Evaluates the parser on the file and prints a table per field and the overall figures.
pub fn run(args: &EvalIntentArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let file = intent::eval::load_cases(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    let report = intent::eval::evaluate(&file.cases, &file.context);
    if !args.quiet && !report.misses.is_empty() {
        println!(
            "{:>5}  {:<14} {:<28} {:<28} message",
            "line", "field", "expected", "got"
        );
        for m in &report.misses {
            println!(
                "{:>5}  {:<14} {:<28} {:<28} {}",
                m.line, m.field, m.expected, m.got, m.message
            );
        }
        println!();
    }
    println!(
        "{:<16} {:>8} {:>8} {:>9}",
        "field", "correct", "scored", "accuracy"
    );
    let row = |name: &str, s: &intent::eval::Score| {
        println!(
            "{:<16} {:>8} {:>8} {:>8.1}%",
            name,
            s.correct,
            s.total,
            s.accuracy() * 100.0
        );
    };
    for (field, score) in &report.fields {
        row(field.name(), score);
    }
    println!("{}", "-".repeat(44));
    row("all fields", &report.overall);
    row("clarify/complete", &report.kind);
    println!(
        "\n{} cases: field accuracy {:.1}%, clarify-vs-complete accuracy {:.1}%",
        report.cases,
        report.overall.accuracy() * 100.0,
        report.kind.accuracy() * 100.0
    );
    if let Some(min) = args.fail_under
        && report.overall.accuracy() < min
    {
        anyhow::bail!(
            "field accuracy {:.3} is below {min}",
            report.overall.accuracy()
        );
    }
    Ok(())
}
