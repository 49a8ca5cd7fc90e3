//! `vision user …`: operator commands on the same database the server uses.

use anyhow::Context;
use app::auth::NewAccount;
use app::{App, Settings};
use domain::Plan;

/// User administration.
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create a user with a plan.
    Create {
        /// Login e-mail.
        #[arg(long)]
        email: String,
        /// Login password (at least 8 characters).
        #[arg(long, env = "VISION_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// Plan: free, pro or enterprise.
        #[arg(long, default_value = "free")]
        plan: Plan,
        /// Display name (defaults to the part of the e-mail before `@`).
        #[arg(long)]
        name: Option<String>,
    },
    /// Show or change a user's segmentation credits.
    Credits {
        /// The user's e-mail.
        #[arg(long)]
        email: String,
        /// Credits to add (negative to take away; the balance never goes below zero).
        #[arg(long, allow_hyphen_values = true)]
        add: Option<i64>,
    },
}

/// Runs a user command.
pub async fn run(settings: Settings, command: UserCommand) -> anyhow::Result<()> {
    let app = App::start(settings)
        .await
        .context("opening the platform's data")?;
    match command {
        UserCommand::Create {
            email,
            password,
            plan,
            name,
        } => {
            let name = name.unwrap_or_else(|| email.split('@').next().unwrap_or(&email).to_owned());
            let user = app::auth::create_account(
                &app,
                NewAccount {
                    email,
                    password,
                    name,
                    plan,
                },
            )
            .await
            .map_err(describe)?;
            println!("created {} <{}> on plan {}", user.id, user.email, user.plan);
        }
        UserCommand::Credits { email, add } => {
            let user = app
                .store
                .user_by_email(&app::auth::normalize_email(&email))
                .await?
                .with_context(|| format!("no user with e-mail {email}"))?;
            let balance = match add {
                Some(delta) => app
                    .store
                    .add_credits(&user.id, delta)
                    .await?
                    .with_context(|| format!("no usage row for {}", user.id))?,
                None => app.store.credits(&user.id).await?,
            };
            println!("{} <{}>: {balance} credits", user.id, user.email);
        }
    }
    Ok(())
}

fn describe(error: app::AppError) -> anyhow::Error {
    match error {
        app::AppError::Validation(errors) => {
            let lines: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect();
            anyhow::anyhow!("invalid input: {}", lines.join("; "))
        }
        other => anyhow::anyhow!(other),
    }
}
