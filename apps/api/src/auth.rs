//! Bearer JWT authentication (HS256) and the ownership rules of API.md: a user acts on
//! `/users/{own id}/...`, an admin on anything, `/admin/...` needs the admin role.

use crate::error::ApiError;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use kernel::UserId;
use serde::{Deserialize, Serialize};
use std::future::{ready, Ready};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// the user id as a string, or "admin"
    pub sub: String,
    pub role: Role,
    pub exp: u64,
    #[serde(default)]
    pub iat: u64,
    /// not before (Unix seconds); a token is refused until then
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// Who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    User(UserId),
    Admin,
}

impl Caller {
    /// May this caller act on `user`'s resources?
    pub fn may_act_for(&self, user: UserId) -> bool {
        match self {
            Caller::Admin => true,
            Caller::User(me) => *me == user,
        }
    }

    pub fn ensure_may_act_for(&self, user: UserId) -> Result<(), ApiError> {
        if self.may_act_for(user) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "you may only act on your own resources",
            ))
        }
    }

    /// The caller as the use cases see it.
    pub fn actor(&self) -> kernel::Actor {
        match self {
            Caller::User(id) => kernel::Actor::User(*id),
            Caller::Admin => kernel::Actor::Admin,
        }
    }

    /// Stable name for scoping idempotency keys.
    pub fn key(&self) -> String {
        match self {
            Caller::User(id) => format!("user:{id}"),
            Caller::Admin => "admin".into(),
        }
    }
}

/// Why a request is not authenticated. Each kind has one fixed message: a 401 never
/// carries library text nor anything of the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header.
    Missing,
    /// Not `Bearer <JWT>`, not a JWT, or claims that are not this API's.
    Malformed,
    /// Not signed with this server's secret (or not with HS256).
    BadSignature,
    /// `exp` has passed.
    Expired,
    /// `nbf` lies in the future.
    NotYetValid,
}

impl AuthFailure {
    /// The fixed `detail` of the 401.
    pub fn message(self) -> &'static str {
        match self {
            AuthFailure::Missing => "a bearer token is required: Authorization: Bearer <token>",
            AuthFailure::Malformed => "the bearer token is malformed or its claims are not valid",
            AuthFailure::BadSignature => "the bearer token's signature is not valid",
            AuthFailure::Expired => "the bearer token has expired",
            AuthFailure::NotYetValid => "the bearer token is not valid yet (nbf)",
        }
    }

    fn of(error: &jsonwebtoken::errors::Error) -> AuthFailure {
        use jsonwebtoken::errors::ErrorKind;
        match error.kind() {
            ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => AuthFailure::BadSignature,
            ErrorKind::ExpiredSignature => AuthFailure::Expired,
            ErrorKind::ImmatureSignature => AuthFailure::NotYetValid,
            _ => AuthFailure::Malformed,
        }
    }
}

impl From<AuthFailure> for ApiError {
    fn from(failure: AuthFailure) -> Self {
        ApiError::unauthorized(failure.message())
    }
}

/// Signs and verifies tokens.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl JwtKeys {
    pub fn new(secret: &str, ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            ttl,
        }
    }

    /// A token for `caller`, valid for the configured lifetime.
    pub fn mint(&self, caller: Caller) -> anyhow::Result<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let (sub, role) = match caller {
            Caller::User(id) => (id.to_string(), Role::User),
            Caller::Admin => ("admin".to_string(), Role::Admin),
        };
        let claims = Claims {
            sub,
            role,
            iat: now,
            exp: now + self.ttl.as_secs(),
            nbf: None,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// Checks signature, expiry, `nbf` and claims.
    pub fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| AuthFailure::of(&e))?;
        let claims = data.claims;
        match claims.role {
            Role::Admin if claims.sub == "admin" => Ok(Caller::Admin),
            // the one strict id parser: "1", never "01" or "+1"
            Role::User => claims
                .sub
                .parse::<UserId>()
                .map(Caller::User)
                .map_err(|_| AuthFailure::Malformed.into()),
            Role::Admin => Err(AuthFailure::Malformed.into()),
        }
    }

    /// The caller of a request, from its `Authorization: Bearer` header.
    pub fn caller_of(&self, req: &HttpRequest) -> Result<Caller, ApiError> {
        let value = req
            .headers()
            .get(header::AUTHORIZATION)
            .ok_or(AuthFailure::Missing)?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or(AuthFailure::Malformed)?;
        self.verify(token.trim())
    }
}

fn keys(req: &HttpRequest) -> Result<&JwtKeys, ApiError> {
    req.app_data::<web::Data<JwtKeys>>()
        .map(|d| d.get_ref())
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("JwtKeys missing from app data")))
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(keys(req).and_then(|k| k.caller_of(req)))
    }
}

/// An admin caller; 401 without a valid token, 403 for a user token.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            keys(req)
                .and_then(|k| k.caller_of(req))
                .and_then(|c| match c {
                    Caller::Admin => Ok(Admin),
                    Caller::User(_) => Err(ApiError::forbidden("this needs an admin token")),
                }),
        )
    }
}

/// The `{user_id}` of a `/users/{user_id}/...` path, checked against the caller:
/// 401 without a valid token, 400 for a bad id, 403 for another user's resources.
#[derive(Debug, Clone, Copy)]
pub struct UserScope {
    pub user: UserId,
    pub caller: Caller,
}

impl FromRequest for UserScope {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready((|| {
            let caller = keys(req)?.caller_of(req)?;
            let user = crate::extract::path_value::<UserId>(req, "user_id")?;
            caller.ensure_may_act_for(user)?;
            Ok(UserScope { user, caller })
        })())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new("a-secret-for-the-unit-tests", Duration::from_secs(3600))
    }

    #[test]
    fn minted_tokens_verify_to_the_same_caller() {
        let k = keys();
        let user = Caller::User(UserId::try_from(42).unwrap());
        assert_eq!(k.verify(&k.mint(user).unwrap()).unwrap(), user);
        assert_eq!(
            k.verify(&k.mint(Caller::Admin).unwrap()).unwrap(),
            Caller::Admin
        );
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let other = JwtKeys::new("another-secret-entirely!!", Duration::from_secs(3600));
        let token = other.mint(Caller::Admin).unwrap();
        assert_eq!(keys().verify(&token).unwrap_err().code(), "UNAUTHORIZED");
    }

    #[test]
    fn expired_tokens_are_refused() {
        let k = keys();
        let claims = Claims {
            sub: "1".into(),
            role: Role::User,
            exp: 1_000,
            iat: 0,
            nbf: None,
        };
        let token = jsonwebtoken::encode(&Header::default(), &claims, &k.encoding).unwrap();
        assert!(k.verify(&token).is_err());
    }

    #[test]
    fn a_user_token_cannot_claim_admin_or_a_bad_id() {
        let k = keys();
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 60;
        for (sub, role) in [("admin", Role::User), ("0", Role::User), ("7", Role::Admin)] {
            let claims = Claims {
                sub: sub.into(),
                role,
                exp,
                iat: 0,
                nbf: None,
            };
            let token = jsonwebtoken::encode(&Header::default(), &claims, &k.encoding).unwrap();
            assert!(k.verify(&token).is_err(), "{sub} {role:?} must be refused");
        }
    }

    #[test]
    fn users_act_only_for_themselves_and_admins_for_anyone() {
        let me = UserId::try_from(1).unwrap();
        let other = UserId::try_from(2).unwrap();
        assert!(Caller::User(me).may_act_for(me));
        assert!(!Caller::User(me).may_act_for(other));
        assert!(Caller::Admin.may_act_for(other));
    }
}
