//! Building the SDK client so the pool, not the SDK, owns retries and timeouts.

use crate::options::Settings;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    Credentials, RequestChecksumCalculation, ResponseChecksumValidation, SharedCredentialsProvider,
    SharedHttpClient, StalledStreamProtectionConfig,
};
use core::fmt;
use core::time::Duration;
use pool_tuning::TuningConfig;

/// A secret string (secret key, session token): its `Debug` prints nothing of
/// it, and it is never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself (only for handing it to the SDK).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret::new(s)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

/// Where credentials come from.
#[derive(Clone)]
#[non_exhaustive]
pub enum CredentialsSource {
    /// Fixed keys (tests, S3-compatible stores).
    Static {
        /// The access key id (not secret, but kept out of logs anyway).
        access_key_id: String,
        /// The secret access key.
        secret_access_key: Secret,
        /// A session token, for temporary credentials.
        session_token: Option<Secret>,
    },
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`,
    /// read when the client is built.
    Environment,
    /// Any provider: e.g. the full AWS chain from `aws-config`
    /// (`aws_config::load_defaults(..).await.credentials_provider()`), which
    /// covers profiles, SSO, web identity, ECS and IMDS.
    Provider(SharedCredentialsProvider),
}

impl fmt::Debug for CredentialsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialsSource::Static { .. } => f.write_str("Static(<redacted>)"),
            CredentialsSource::Environment => f.write_str("Environment"),
            CredentialsSource::Provider(_) => f.write_str("Provider(..)"),
        }
    }
}

impl CredentialsSource {
    /// Static keys.
    pub fn fixed(access_key_id: impl Into<String>, secret_access_key: impl Into<Secret>) -> Self {
        CredentialsSource::Static {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }

    fn provider(&self) -> Result<SharedCredentialsProvider, ConfigError> {
        Ok(match self {
            CredentialsSource::Static {
                access_key_id,
                secret_access_key,
                session_token,
            } => SharedCredentialsProvider::new(Credentials::new(
                access_key_id,
                secret_access_key.expose(),
                session_token.as_ref().map(|s| s.expose().to_owned()),
                None,
                "pool-s3-static",
            )),
            CredentialsSource::Environment => {
                let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
                let (Some(id), Some(secret)) =
                    (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
                else {
                    return Err(ConfigError(
                        "credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set"
                            .into(),
                    ));
                };
                SharedCredentialsProvider::new(Credentials::new(
                    id,
                    secret,
                    var("AWS_SESSION_TOKEN"),
                    None,
                    "pool-s3-environment",
                ))
            }
            CredentialsSource::Provider(p) => p.clone(),
        })
    }
}

/// A bad client configuration. Its message never contains a credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid S3 client configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

/// How to build a client: where S3 is, who we are, and this crate's
/// [`Settings`]. `Debug` never shows a credential.
#[derive(Clone, Debug)]
pub struct Config {
    /// The region requests are signed for (any string for S3-compatible stores).
    pub region: String,
    /// A custom endpoint (S3-compatible stores, tests); `None`: AWS's.
    pub endpoint_url: Option<String>,
    /// Path-style addressing (`host/bucket/key`): needed by most S3-compatible
    /// stores and by IP endpoints.
    pub force_path_style: bool,
    /// Credentials.
    pub credentials: CredentialsSource,
    /// TCP connect timeout. The only timeout left to the SDK: it bounds a
    /// connect before any byte is sent; the pool's per-attempt timeout rules
    /// everything else.
    pub connect_timeout: Option<Duration>,
    /// Partitions, transfer sizes, default priority and timeouts.
    pub settings: Settings,
    /// The pool's adaptive strategy by name, attached by
    /// [`Client::new`](crate::Client::new): any `pool-tuning` spec or tuning config in its
    /// compact form, e.g. `"aimd(initial_limit=16, max_limit=256)"`,
    /// `"vegas"`, `"flagship + aws-adaptive@partition"`. `None`: the pool is
    /// left as it is.
    pub strategy: Option<String>,
}

impl Config {
    /// A config for AWS in `region` with credentials from the environment.
    pub fn new(region: impl Into<String>) -> Self {
        Config {
            region: region.into(),
            endpoint_url: None,
            force_path_style: false,
            credentials: CredentialsSource::Environment,
            connect_timeout: Some(Duration::from_millis(3_100)),
            settings: Settings::default(),
            strategy: None,
        }
    }
    /// With this endpoint.
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }
    /// With path-style addressing on or off.
    pub fn force_path_style(mut self, on: bool) -> Self {
        self.force_path_style = on;
        self
    }
    /// With these credentials.
    pub fn credentials(mut self, c: CredentialsSource) -> Self {
        self.credentials = c;
        self
    }
    /// With these settings.
    pub fn settings(mut self, s: Settings) -> Self {
        self.settings = s;
        self
    }

    /// With the pool's strategy chosen by name (see [`Config::strategy`]).
    pub fn strategy(mut self, spec: impl Into<String>) -> Self {
        self.strategy = Some(spec.into());
        self
    }

    /// The parsed and validated [`Config::strategy`]; the error names the
    /// field and, for an unknown name, lists the valid ones.
    pub fn tuning(&self) -> Result<Option<TuningConfig>, ConfigError> {
        let Some(spec) = &self.strategy else {
            return Ok(None);
        };
        let bad = |e: pool_tuning::SpecError| ConfigError(format!("strategy = {spec:?}: {e}"));
        let t: TuningConfig = spec.parse().map_err(bad)?;
        t.validate().map_err(bad)?;
        Ok(Some(t))
    }

    /// Builds the SDK client: retries off, no SDK timeout but the connect one,
    /// no stalled-stream protection (the pool's per-attempt timeout rules),
    /// checksums only where S3 requires them, and an HTTP client keeping up
    /// to `max_idle_connections` idle connections per host.
    pub fn build_sdk_client(
        &self,
        max_idle_connections: usize,
    ) -> Result<aws_sdk_s3::Client, ConfigError> {
        self.settings.validate().map_err(ConfigError)?;
        if self.region.is_empty() {
            return Err(ConfigError("region must not be empty".into()));
        }
        let mut timeouts = TimeoutConfig::builder();
        if let Some(d) = self.connect_timeout {
            timeouts = timeouts.connect_timeout(d);
        }
        let mut b = aws_sdk_s3::config::Builder::new()
            .region(aws_sdk_s3::config::Region::new(self.region.clone()))
            .force_path_style(self.force_path_style)
            .credentials_provider(self.credentials.provider()?)
            .http_client(http_client(max_idle_connections));
        if let Some(url) = &self.endpoint_url {
            b = b.endpoint_url(url);
        }
        let conf = adopt(b).timeout_config(timeouts.build()).build();
        Ok(aws_sdk_s3::Client::from_conf(conf))
    }
}

/// The settings that make the pool the only one retrying and timing out.
pub(crate) fn adopt(b: aws_sdk_s3::config::Builder) -> aws_sdk_s3::config::Builder {
    b.retry_config(RetryConfig::disabled())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        // Streaming bodies with trailing checksums are not understood by every
        // S3-compatible store (the test-server survey's gotcha 1).
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
}

/// The SDK's hyper client. It never caps open connections (so nothing queues
/// unseen inside it: the pool's limit is the only one, seed flaw F41); it keeps
/// up to `max_idle` idle connections per host for reuse, sized from the pool's
/// limit so every slot can keep its connection warm.
fn http_client(max_idle: usize) -> SharedHttpClient {
    let b = aws_smithy_http_client::Builder::new().pool_max_idle_per_host(max_idle.max(1));
    #[cfg(feature = "rustls")]
    {
        use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
        b.tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https()
    }
    #[cfg(not(feature = "rustls"))]
    {
        b.build_http()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let c = Config::new("us-east-1").credentials(CredentialsSource::Static {
            access_key_id: "AKIDSECRETID".into(),
            secret_access_key: "SUPERSECRETKEY".into(),
            session_token: Some("SESSIONTOKEN".into()),
        });
        let d = format!("{c:?} {:?}", c.credentials);
        for s in ["AKIDSECRETID", "SUPERSECRETKEY", "SESSIONTOKEN"] {
            assert!(!d.contains(s), "{s} leaked in {d}");
        }
    }

    #[test]
    fn bad_settings_and_region_are_errors() {
        let c = Config::new("");
        assert!(c.build_sdk_client(8).unwrap_err().0.contains("region"));
        let mut c = Config::new("r");
        c.settings.part_size = 1;
        assert!(c.build_sdk_client(8).unwrap_err().0.contains("part_size"));
    }

    #[test]
    fn strategies_are_named_and_bad_ones_name_the_field() {
        assert_eq!(Config::new("r").tuning(), Ok(None));
        let t = Config::new("r").strategy("aimd(initial_limit=7)").tuning();
        assert_eq!(t.unwrap().unwrap().to_string(), "aimd(initial_limit=7)");
        let e = Config::new("r").strategy("aimdx").tuning().unwrap_err();
        assert!(
            e.0.starts_with("strategy = \"aimdx\": unknown strategy"),
            "{e}"
        );
        assert!(e.0.contains("valid names: fixed, aimd"), "{e}");
        let e = Config::new("r")
            .strategy("aimd(backoff_ratio=2)")
            .tuning()
            .unwrap_err();
        assert!(
            e.0.contains("strategy") && e.0.contains("backoff_ratio"),
            "{e}"
        );
    }
}
