//! Settings: `config/default.toml` (also compiled in), `config/$COMMERCE_ENV.toml`,
//! then `COMMERCE__SECTION__KEY` variables; `DATABASE_URL` when
//! `COMMERCE__DATABASE__URL` is unset.

use anyhow::{bail, Context};
use config::{Config, Environment, File, FileFormat};
use data_platform::signing::SigningSecret;
use outbox::RetryPolicy;
use serde::Deserialize;
use std::fmt;
use std::time::Duration;

const DEFAULTS: &str = include_str!("../../../config/default.toml");
/// The development secret of `config/default.toml`; refused in production.
pub const DEV_JWT_SECRET: &str = "dev-only-secret-change-me-in-production";

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub environment: String,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub data_platform: DataPlatformSettings,
    pub orders: OrderSettings,
    pub payment_gateway: PaymentGatewaySettings,
    pub jobs: JobSettings,
    pub idempotency: IdempotencySettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IdempotencySettings {
    /// How long a running request holds its key; a retry after it takes over a request
    /// that died (and finds what that request recorded or started).
    pub lease_seconds: u64,
    /// How long a key is remembered.
    pub ttl_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub max_body_bytes: usize,
}

#[derive(Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    pub pool_size: usize,
    /// The longest a request waits for a connection or for one statement.
    pub timeout_ms: u64,
}

#[derive(Clone, Deserialize)]
pub struct AuthSettings {
    pub jwt_secret: String,
    pub token_ttl_seconds: u64,
}

#[derive(Clone, Deserialize)]
pub struct DataPlatformSettings {
    pub url: String,
    pub max_attempts: u32,
    pub timeout_ms: u64,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// Comma-separated `whsec_...` secrets; every delivery is signed with each.
    #[serde(default)]
    pub signing_secrets: String,
    /// Days a DELIVERED event and its attempts are kept.
    pub retention_days: u32,
}

impl DataPlatformSettings {
    /// The signing secrets, checked (`validate` has refused bad ones already).
    pub fn secrets(&self) -> anyhow::Result<Vec<SigningSecret>> {
        SigningSecret::parse_list(&self.signing_secrets)
            .map_err(|e| anyhow::anyhow!("COMMERCE__DATA_PLATFORM__SIGNING_SECRETS: {e}"))
    }

    /// When to retry a failed delivery and when to park the event.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(self.backoff_base_ms),
            max: Duration::from_millis(self.backoff_max_ms),
            max_attempts: self.max_attempts,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct OrderSettings {
    pub pending_ttl_seconds: u64,
    pub expiry_sweep_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PaymentGatewaySettings {
    pub kind: String,
    pub url: String,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JobSettings {
    pub enabled: bool,
    pub charge_recovery_seconds: u64,
    pub charge_recovery_grace_seconds: u64,
}

// Secrets stay out of logs and panics.
impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = match self.url.split_once('@') {
            Some((_, host)) => format!("postgres://***@{host}"),
            None => self.url.clone(),
        };
        f.debug_struct("DatabaseSettings")
            .field("url", &redacted)
            .field("pool_size", &self.pool_size)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

impl fmt::Debug for DataPlatformSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secrets = self
            .signing_secrets
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .count();
        f.debug_struct("DataPlatformSettings")
            .field("url", &self.url)
            .field("max_attempts", &self.max_attempts)
            .field("timeout_ms", &self.timeout_ms)
            .field("backoff_base_ms", &self.backoff_base_ms)
            .field("backoff_max_ms", &self.backoff_max_ms)
            .field("signing_secrets", &format!("{secrets} secret(s), ***"))
            .field("retention_days", &self.retention_days)
            .finish()
    }
}

impl fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthSettings")
            .field("jwt_secret", &"***")
            .field("token_ttl_seconds", &self.token_ttl_seconds)
            .finish()
    }
}

impl Settings {
    /// Loads the layers from the working directory and the process environment.
    pub fn load() -> anyhow::Result<Settings> {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(&vars)
    }

    /// Loads with an explicit environment (tests use this).
    pub fn load_from(vars: &[(String, String)]) -> anyhow::Result<Settings> {
        let var = |k: &str| {
            vars.iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.clone())
        };
        let env = var("COMMERCE_ENV").unwrap_or_else(|| "development".into());
        let env_source = Environment::with_prefix("COMMERCE")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .source(Some(vars.iter().cloned().collect()));
        let mut builder = Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .add_source(File::new("config/default", FileFormat::Toml).required(false))
            .add_source(File::new(&format!("config/{env}"), FileFormat::Toml).required(false))
            .add_source(env_source)
            .set_override("environment", env.clone())?;
        if var("COMMERCE__DATABASE__URL").is_none() {
            if let Some(url) = var("DATABASE_URL") {
                builder = builder.set_override("database.url", url)?;
            }
        }
        let settings: Settings = builder
            .build()
            .context("reading configuration")?
            .try_deserialize()
            .context("invalid configuration")?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn is_production(&self) -> bool {
        self.environment == "production"
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.is_production() && self.auth.jwt_secret == DEV_JWT_SECRET {
            bail!("refusing to start in production with the default JWT secret: set COMMERCE__AUTH__JWT_SECRET");
        }
        if self.auth.jwt_secret.len() < 16 {
            bail!("COMMERCE__AUTH__JWT_SECRET must be at least 16 characters");
        }
        match self.payment_gateway.kind.as_str() {
            "sandbox" => {}
            "http" if !self.payment_gateway.url.is_empty() => {}
            "http" => {
                bail!("COMMERCE__PAYMENT_GATEWAY__URL is required when the gateway kind is http")
            }
            other => bail!("unknown payment gateway kind {other:?} (expected sandbox or http)"),
        }
        if self.database.pool_size == 0 {
            bail!("COMMERCE__DATABASE__POOL_SIZE must be at least 1");
        }
        if self.database.timeout_ms == 0 {
            bail!("COMMERCE__DATABASE__TIMEOUT_MS must be at least 1");
        }
        let secrets = self.data_platform.secrets()?;
        if self.is_production() && !self.data_platform.url.trim().is_empty() && secrets.is_empty() {
            bail!("refusing to start in production with a data platform URL but no signing secret: set COMMERCE__DATA_PLATFORM__SIGNING_SECRETS (whsec_ + base64 of at least 24 random bytes)");
        }
        if self.data_platform.retention_days == 0 {
            bail!("COMMERCE__DATA_PLATFORM__RETENTION_DAYS must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_the_contract() {
        let s = Settings::load_from(&[]).unwrap();
        assert_eq!((s.server.host.as_str(), s.server.port), ("127.0.0.1", 8080));
        assert_eq!(s.database.pool_size, 16);
        assert_eq!(s.database.timeout_ms, 5000);
        assert_eq!(s.data_platform.url, "");
        assert_eq!(s.data_platform.timeout_ms, 5000);
        assert_eq!(s.data_platform.backoff_base_ms, 1000);
        assert_eq!(s.data_platform.retention_days, 14);
        assert_eq!(s.data_platform.signing_secrets, "");
        assert_eq!(
            (s.orders.pending_ttl_seconds, s.orders.expiry_sweep_seconds),
            (900, 10)
        );
        assert_eq!(s.payment_gateway.kind, "sandbox");
    }

    #[test]
    fn environment_variables_win_over_files() {
        let s = Settings::load_from(&vars(&[
            ("COMMERCE__SERVER__PORT", "9999"),
            ("COMMERCE__DATA_PLATFORM__MAX_ATTEMPTS", "3"),
            ("COMMERCE__DATABASE__POOL_SIZE", "4"),
        ]))
        .unwrap();
        assert_eq!(s.server.port, 9999);
        assert_eq!(s.data_platform.max_attempts, 3);
        assert_eq!(s.database.pool_size, 4);
    }

    #[test]
    fn database_url_is_a_fallback_only() {
        let s = Settings::load_from(&vars(&[("DATABASE_URL", "postgres://a/b")])).unwrap();
        assert_eq!(s.database.url, "postgres://a/b");
        let s = Settings::load_from(&vars(&[
            ("DATABASE_URL", "postgres://a/b"),
            ("COMMERCE__DATABASE__URL", "postgres://c/d"),
        ]))
        .unwrap();
        assert_eq!(s.database.url, "postgres://c/d");
    }

    #[test]
    fn production_refuses_the_default_secret() {
        let err = Settings::load_from(&vars(&[("COMMERCE_ENV", "production")])).unwrap_err();
        assert!(err.to_string().contains("default JWT secret"), "{err}");
        let ok = Settings::load_from(&vars(&[
            ("COMMERCE_ENV", "production"),
            ("COMMERCE__AUTH__JWT_SECRET", "a-real-secret-of-some-length"),
        ]));
        assert!(ok.is_ok());
    }

    // Invariant (API.md): with the default settings an event is retried for at least 72
    // hours before it is parked as DEAD, whatever the jitter draws.
    #[test]
    fn the_default_retries_span_at_least_72_hours() {
        let p = Settings::load_from(&[])
            .unwrap()
            .data_platform
            .retry_policy();
        let span = p.shortest_span();
        assert!(span >= Duration::from_secs(72 * 3600), "{span:?}");
        // and not absurdly longer: an event still goes DEAD within a week
        assert!(
            p.longest_span() <= Duration::from_secs(7 * 24 * 3600),
            "{:?}",
            p.longest_span()
        );
        // the numbers docs/operations.md states
        assert_eq!((p.max_attempts, p.max), (156, Duration::from_secs(3600)));
        assert_eq!(span.as_secs() / 60, 4324); // 72 h 4 min
    }

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    #[test]
    fn signing_secrets_are_a_comma_separated_list_of_checked_secrets() {
        let s = Settings::load_from(&vars(&[(
            "COMMERCE__DATA_PLATFORM__SIGNING_SECRETS",
            &format!("{SECRET}, whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        )]))
        .unwrap();
        assert_eq!(s.data_platform.secrets().unwrap().len(), 2);
        assert!(
            !format!("{s:?}").contains("C2FVsBQ"),
            "secrets are not printed"
        );
        for bad in [
            "C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "whsec_short",
            "whsec_!!!",
        ] {
            let err =
                Settings::load_from(&vars(&[("COMMERCE__DATA_PLATFORM__SIGNING_SECRETS", bad)]))
                    .unwrap_err();
            assert!(
                err.to_string()
                    .contains("COMMERCE__DATA_PLATFORM__SIGNING_SECRETS"),
                "{err}"
            );
        }
    }

    #[test]
    fn production_refuses_a_platform_url_without_a_signing_secret() {
        let prod = [
            ("COMMERCE_ENV", "production"),
            ("COMMERCE__AUTH__JWT_SECRET", "a-real-secret-of-some-length"),
            ("COMMERCE__DATA_PLATFORM__URL", "https://platform.example"),
        ];
        let err = Settings::load_from(&vars(&prod)).unwrap_err();
        assert!(err.to_string().contains("no signing secret"), "{err}");
        let mut signed = prod.to_vec();
        signed.push(("COMMERCE__DATA_PLATFORM__SIGNING_SECRETS", SECRET));
        assert!(Settings::load_from(&vars(&signed)).is_ok());
        // outside production an unsigned platform is allowed (local runs, tests)
        assert!(Settings::load_from(&vars(&prod[2..])).is_ok());
    }

    #[test]
    fn secrets_are_not_printed() {
        let s = Settings::load_from(&vars(&[(
            "COMMERCE__DATABASE__URL",
            "postgres://u:pw@h/db",
        )]))
        .unwrap();
        let printed = format!("{s:?}");
        assert!(
            !printed.contains(DEV_JWT_SECRET) && !printed.contains("pw"),
            "{printed}"
        );
    }
}
