//! `commerce-api`: serve, migrate, or mint a token for local use.

use anyhow::Context;
use clap::{Parser, Subcommand};
use commerce_api::auth::{Caller, JwtKeys};
use commerce_api::config::Settings;
use commerce_api::startup::{Application, RunMode};
use commerce_api::telemetry;
use data_platform::signing::SigningSecret;
use kernel::UserId;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "commerce-api", version, about = "The commerce HTTP API")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run pending migrations, then serve HTTP and run the background jobs.
    Serve,
    /// Run pending migrations and exit.
    Migrate,
    /// Add the demo data `make run` shows (idempotent).
    Seed,
    /// Run a stand-in data platform for local use: prints each event it receives; with
    /// --secret it checks Standard Webhooks signatures and answers 401 to a bad one.
    Sink {
        /// the port to listen on (127.0.0.1)
        #[arg(long, env = "SINK_PORT", default_value_t = 9090)]
        port: u16,
        /// a whsec_... secret a delivery must be signed with (repeat for several: any
        /// one verifies)
        #[arg(long = "secret", value_name = "WHSEC")]
        secrets: Vec<String>,
    },
    /// Print a JWT signed with the configured secret, valid for 24 h.
    Token {
        /// the user id the token is for
        #[arg(long, required_unless_present = "admin", conflicts_with = "admin")]
        user: Option<i64>,
        /// an admin token instead
        #[arg(long)]
        admin: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load()?;
    match cli.command {
        Command::Serve => {
            telemetry::init(settings.is_production());
            tracing::info!(environment = %settings.environment, "starting");
            let app = Application::build(settings, RunMode::Serve).await?;
            tracing::info!(port = app.port(), "listening");
            app.run_until_stopped().await?;
            tracing::info!("stopped");
        }
        Command::Migrate => {
            telemetry::init(settings.is_production());
            let applied = postgres_adapter::run_migrations(&settings.database.url).await?;
            println!("{}", commerce_api::startup::migrations_report(&applied));
        }
        Command::Seed => {
            telemetry::init(settings.is_production());
            for line in commerce_api::seed::seed(&settings).await? {
                println!("seeded: {line}");
            }
        }
        Command::Sink { port, secrets } => {
            let secrets = secrets
                .iter()
                .map(|s| SigningSecret::parse(s))
                .collect::<Result<Vec<_>, _>>()
                .context("--secret")?;
            commerce_api::sink::run(port, commerce_api::sink::SinkSettings { secrets }).await?
        }
        Command::Token { user, admin } => {
            let keys = JwtKeys::new(&settings.auth.jwt_secret, Duration::from_secs(24 * 3600));
            let caller = if admin {
                Caller::Admin
            } else {
                let id = user.context("--user or --admin is required")?;
                Caller::User(UserId::try_from(id).context("--user must be a positive id")?)
            };
            println!("{}", keys.mint(caller)?);
        }
    }
    Ok(())
}
