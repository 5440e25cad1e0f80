//! Standard Webhooks signatures (symmetric, `v1`): what the platform checks to know a
//! delivery comes from this service, and what `commerce-api sink` checks.
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the signature is
//! `v1,` + base64 of its HMAC-SHA256 under the secret's bytes. A secret is written
//! `whsec_` + base64 of 24 to 64 random bytes. Several secrets (rotation) give several
//! space-separated signatures in one `webhook-signature` header; a receiver accepts a
//! delivery when any of them verifies under any secret it holds.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::time::Duration;

/// The prefix of a written secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// The fewest random bytes in a secret (the specification's minimum).
pub const MIN_SECRET_BYTES: usize = 24;
/// The most bytes in a secret (the specification's maximum, 512 bits).
pub const MAX_SECRET_BYTES: usize = 64;
/// How far a receiver lets a timestamp be from its own clock (the specification's default).
pub const TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Standard base64, padding optional (secrets are written both ways).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const VERSION: &str = "v1";

/// A signing secret: the bytes of a `whsec_...` string. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    key: Vec<u8>,
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(***)")
    }
}

/// Why a written secret is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSecret {
    /// It does not start with `whsec_`.
    #[error("a signing secret starts with {SECRET_PREFIX}")]
    NoPrefix,
    /// What follows the prefix is not base64.
    #[error("a signing secret is {SECRET_PREFIX} followed by base64")]
    NotBase64,
    /// Too few or too many bytes.
    #[error("a signing secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, this one {0}")]
    Length(usize),
}

impl SigningSecret {
    /// Reads a written secret, `whsec_` + base64 of 24..=64 bytes (surrounding spaces
    /// ignored).
    pub fn parse(written: &str) -> Result<Self, InvalidSecret> {
        let encoded = written
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(InvalidSecret::NoPrefix)?;
        let key = BASE64
            .decode(encoded)
            .map_err(|_| InvalidSecret::NotBase64)?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(InvalidSecret::Length(key.len()));
        }
        Ok(Self { key })
    }

    /// Reads a comma-separated list of written secrets; empty entries are skipped, so an
    /// empty string is no secret at all.
    pub fn parse_list(written: &str) -> Result<Vec<Self>, InvalidSecret> {
        written
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Self::parse)
            .collect()
    }

    /// The secret written out (`whsec_` + base64), e.g. to hand it to the platform.
    pub fn expose(&self) -> String {
        format!(
            "{SECRET_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(&self.key)
        )
    }

    fn mac(&self, id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// `v1,<base64 signature>` of `body` sent as `id` at `timestamp` (Unix seconds).
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self
            .mac(id, &timestamp.to_string(), body)
            .finalize()
            .into_bytes();
        format!("{VERSION},{}", BASE64.encode(tag))
    }
}

/// The `webhook-signature` header for `body`: one signature per secret, space-separated.
pub fn signature_header(
    secrets: &[SigningSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a delivery does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A `webhook-*` header is missing.
    #[error("missing header {0}")]
    Missing(&'static str),
    /// `webhook-timestamp` is not Unix seconds.
    #[error("webhook-timestamp is not a number of seconds")]
    BadTimestamp,
    /// The timestamp is further than the tolerance from now (a replay, or a bad clock).
    #[error("webhook-timestamp is {0} s away from now, more than the tolerance")]
    OutOfTolerance(i64),
    /// No signature in the header verifies under any secret.
    #[error("no signature matches")]
    NoMatch,
}

/// What a receiver got: the three `webhook-*` headers (as received, if at all) and the
/// raw body.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// `webhook-id`.
    pub id: Option<&'a str>,
    /// `webhook-timestamp`.
    pub timestamp: Option<&'a str>,
    /// `webhook-signature`.
    pub signature: Option<&'a str>,
    /// The body, byte for byte.
    pub body: &'a [u8],
}

/// Verifies a delivery as a receiver: its timestamp within `tolerance` of `now` (Unix
/// seconds), and at least one `v1` signature of the header matching under one of
/// `secrets` (compared in constant time).
pub fn verify(
    secrets: &[SigningSecret],
    delivery: Delivery<'_>,
    now: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let id = delivery.id.ok_or(VerifyError::Missing("webhook-id"))?;
    let timestamp = delivery
        .timestamp
        .ok_or(VerifyError::Missing("webhook-timestamp"))?;
    let header = delivery
        .signature
        .ok_or(VerifyError::Missing("webhook-signature"))?;
    let seconds: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    let skew = now.saturating_sub(seconds);
    if skew.unsigned_abs() > tolerance.as_secs() {
        return Err(VerifyError::OutOfTolerance(skew));
    }
    let tags: Vec<Vec<u8>> = header
        .split(' ')
        .filter_map(|s| s.split_once(','))
        .filter(|(version, _)| *version == VERSION)
        .filter_map(|(_, tag)| BASE64.decode(tag).ok())
        .collect();
    let matches = secrets.iter().any(|secret| {
        tags.iter().any(|tag| {
            secret
                .mac(id, timestamp.trim(), delivery.body)
                .verify_slice(tag)
                .is_ok()
        })
    });
    if matches {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published test vector of the Standard Webhooks reference libraries.
    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TIMESTAMP: i64 = 1_649_367_553;
    const BODY: &str = r#"{"email":"test@example.com","username":"test_user"}"#;
    const SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn delivery<'a>(timestamp: &'a str, signature: &'a str, body: &'a str) -> Delivery<'a> {
        Delivery {
            id: Some(ID),
            timestamp: Some(timestamp),
            signature: Some(signature),
            body: body.as_bytes(),
        }
    }

    #[test]
    fn signing_matches_the_published_test_vector() {
        let secret = SigningSecret::parse(SECRET).unwrap();
        assert_eq!(secret.sign(ID, TIMESTAMP, BODY.as_bytes()), SIGNATURE);
        assert_eq!(secret.expose(), SECRET);
    }

    #[test]
    fn the_published_test_vector_verifies_and_any_change_fails() {
        let secrets = [SigningSecret::parse(SECRET).unwrap()];
        let ts = TIMESTAMP.to_string();
        assert_eq!(
            verify(
                &secrets,
                delivery(&ts, SIGNATURE, BODY),
                TIMESTAMP,
                TOLERANCE
            ),
            Ok(())
        );
        let changed = BODY.replace("test_user", "test_usr");
        assert_eq!(
            verify(
                &secrets,
                delivery(&ts, SIGNATURE, &changed),
                TIMESTAMP,
                TOLERANCE
            ),
            Err(VerifyError::NoMatch)
        );
        let other = "1649367554";
        assert_eq!(
            verify(
                &secrets,
                delivery(other, SIGNATURE, BODY),
                TIMESTAMP,
                TOLERANCE
            ),
            Err(VerifyError::NoMatch)
        );
        // five minutes and one second later: too old
        assert_eq!(
            verify(
                &secrets,
                delivery(&ts, SIGNATURE, BODY),
                TIMESTAMP + 301,
                TOLERANCE
            ),
            Err(VerifyError::OutOfTolerance(301))
        );
        assert!(verify(
            &secrets,
            delivery(&ts, SIGNATURE, BODY),
            TIMESTAMP + 300,
            TOLERANCE
        )
        .is_ok());
        assert!(verify(
            &secrets,
            delivery(&ts, SIGNATURE, BODY),
            TIMESTAMP - 301,
            TOLERANCE
        )
        .is_err());
    }

    // Invariant: with two secrets configured, a receiver holding either one verifies,
    // and one holding neither does not.
    #[test]
    fn several_secrets_sign_side_by_side_for_rotation() {
        let old = SigningSecret::parse(SECRET).unwrap();
        let new = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let header = signature_header(&[new.clone(), old.clone()], ID, TIMESTAMP, BODY.as_bytes());
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1], SIGNATURE);
        let ts = TIMESTAMP.to_string();
        for receiver in [&old, &new] {
            let held = [receiver.clone()];
            assert_eq!(
                verify(&held, delivery(&ts, &header, BODY), TIMESTAMP, TOLERANCE),
                Ok(())
            );
        }
        let stranger = [SigningSecret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap()];
        assert_eq!(
            verify(
                &stranger,
                delivery(&ts, &header, BODY),
                TIMESTAMP,
                TOLERANCE
            ),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn missing_or_garbled_headers_do_not_verify() {
        let secrets = [SigningSecret::parse(SECRET).unwrap()];
        let ts = TIMESTAMP.to_string();
        let mut d = delivery(&ts, SIGNATURE, BODY);
        d.signature = None;
        assert_eq!(
            verify(&secrets, d, TIMESTAMP, TOLERANCE),
            Err(VerifyError::Missing("webhook-signature"))
        );
        assert_eq!(
            verify(
                &secrets,
                delivery("soon", SIGNATURE, BODY),
                TIMESTAMP,
                TOLERANCE
            ),
            Err(VerifyError::BadTimestamp)
        );
        for garbled in [
            "v1,",
            "v2,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            "v1,tZ1I4/hD",
            "nonsense",
        ] {
            assert_eq!(
                verify(&secrets, delivery(&ts, garbled, BODY), TIMESTAMP, TOLERANCE),
                Err(VerifyError::NoMatch),
                "{garbled}"
            );
        }
    }

    #[test]
    fn written_secrets_are_checked() {
        assert_eq!(
            SigningSecret::parse("C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
            Err(InvalidSecret::NoPrefix)
        );
        assert_eq!(
            SigningSecret::parse("whsec_not base64!"),
            Err(InvalidSecret::NotBase64)
        );
        // 16 bytes: too short
        assert_eq!(
            SigningSecret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAA=="),
            Err(InvalidSecret::Length(16))
        );
        assert_eq!(SigningSecret::parse_list("").unwrap(), vec![]);
        assert_eq!(
            SigningSecret::parse_list(&format!(" {SECRET} ,, {SECRET}"))
                .unwrap()
                .len(),
            2
        );
        assert!(SigningSecret::parse_list(&format!("{SECRET},whsec_x")).is_err());
        assert_eq!(
            format!("{:?}", SigningSecret::parse(SECRET).unwrap()),
            "SigningSecret(***)"
        );
    }
}
