//! Admin authentication of the trigger: an API Gateway IAM principal, or the static admin key.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use subtle::ConstantTimeEq;

use super::ApiError;
use crate::config::{Config, Secret};

/// Who is calling, once authenticated. Used as the rate-limit key; never shown in a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A caller API Gateway authenticated with SigV4 (the route's IAM authorizer).
    Iam {
        /// The caller's ARN (or caller id when the gateway gives no ARN).
        arn: String,
    },
    /// A caller holding the static admin key (there is one key, so one principal).
    AdminKey,
}

impl Principal {
    /// A stable id for per-caller limits.
    pub fn id(&self) -> String {
        match self {
            Principal::Iam { arn } => format!("iam:{arn}"),
            Principal::AdminKey => "admin-key".to_string(),
        }
    }
}

/// The key could not be loaded at start-up. `Display` is one line naming the setting.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    /// The SSM parameter could not be read.
    #[error("ADMIN_API_KEY_PARAM={param:?}: could not read the SSM parameter: {reason}")]
    Ssm {
        /// The parameter name.
        param: String,
        /// What went wrong (the SDK's error, which never contains the value).
        reason: String,
    },
    /// The parameter holds a key too short to be safe.
    #[error("ADMIN_API_KEY_PARAM={param:?}: the parameter's value is invalid: expected a key of at least 16 characters")]
    Weak {
        /// The parameter name.
        param: String,
    },
}

/// Decides whether a request comes from an admin.
#[derive(Debug, Clone)]
pub struct AdminAuth {
    key: Option<Secret>,
}

/// Keys shorter than this are refused at start-up (the same rule as `ADMIN_API_KEY`).
const MIN_KEY_LEN: usize = 16;

impl AdminAuth {
    /// Accepts IAM principals, and the static key when one is given.
    pub fn new(key: Option<Secret>) -> AdminAuth {
        AdminAuth { key }
    }

    /// True when a static key is configured (otherwise only IAM callers get in).
    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// Loads the key once at start-up: `ADMIN_API_KEY`, else the SSM parameter `ADMIN_API_KEY_PARAM`
    /// (decrypted), else none (IAM only).
    pub async fn from_config(
        config: &Config,
        ssm: Option<&aws_sdk_ssm::Client>,
    ) -> Result<AdminAuth, AuthSetupError> {
        if let Some(key) = &config.admin_api_key {
            return Ok(AdminAuth::new(Some(key.clone())));
        }
        let (Some(param), Some(ssm)) = (&config.admin_api_key_param, ssm) else {
            return Ok(AdminAuth::new(None));
        };
        let reply = ssm
            .get_parameter()
            .name(param)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| AuthSetupError::Ssm {
                param: param.clone(),
                reason: aws_sdk_ssm::error::DisplayErrorContext(&e).to_string(),
            })?;
        let value = reply.parameter.and_then(|p| p.value).unwrap_or_default();
        let value = value.trim();
        if value.len() < MIN_KEY_LEN {
            return Err(AuthSetupError::Weak {
                param: param.clone(),
            });
        }
        Ok(AdminAuth::new(Some(Secret::new(value))))
    }

    /// Authenticates `req`: 401 without credentials, 403 with wrong ones.
    pub fn authenticate(&self, req: &Request) -> Result<Principal, ApiError> {
        if let Some(principal) = iam_principal(req) {
            return Ok(principal);
        }
        let presented = presented_key(req)?;
        let Some(key) = &self.key else {
            // Credentials, but nothing to check them against: IAM-only set-up.
            return Err(ApiError::Forbidden);
        };
        // Constant time in the key's bytes, so the comparison does not reveal a matching prefix.
        if bool::from(presented.ct_eq(key.expose().as_bytes())) {
            Ok(Principal::AdminKey)
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// The IAM principal API Gateway put in the request context. Only the gateway writes the context,
/// after it verified the SigV4 signature, so a client cannot forge it with headers.
fn iam_principal(req: &Request) -> Option<Principal> {
    let RequestContext::ApiGatewayV2(ctx) = req.request_context_ref()? else {
        return None;
    };
    let iam = ctx.authorizer.as_ref()?.iam.as_ref()?;
    let arn = iam
        .user_arn
        .clone()
        .or_else(|| iam.caller_id.clone())
        .filter(|a| !a.is_empty())?;
    Some(Principal::Iam { arn })
}

/// The key in `x-api-key` or `Authorization: Bearer`; 401 when neither is there.
fn presented_key(req: &Request) -> Result<&[u8], ApiError> {
    let headers = req.headers();
    if let Some(value) = headers.get("x-api-key") {
        let value = value.as_bytes().trim_ascii();
        return if value.is_empty() {
            Err(ApiError::Unauthorized)
        } else {
            Ok(value)
        };
    }
    let Some(value) = headers.get(lambda_http::http::header::AUTHORIZATION) else {
        return Err(ApiError::Unauthorized);
    };
    let value = value.as_bytes().trim_ascii();
    match value.split_at_checked(7) {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case(b"bearer ") && !token.trim_ascii().is_empty() =>
        {
            Ok(token.trim_ascii())
        }
        // Another scheme (Basic, AWS4-HMAC-SHA256 sent to a route without IAM): credentials we do
        // not accept here, which is a 403 rather than "you sent nothing".
        _ if !value.is_empty() => Err(ApiError::Forbidden),
        _ => Err(ApiError::Unauthorized),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::HeaderValue;

    // The key of the shared fixture `apigw-v2-post-test.json`.
    const KEY: &str = "local-admin-key-0001";

    fn post_fixture() -> Request {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/events/apigw-v2-post-test.json"
        );
        lambda_http::request::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn without_credentials() -> Request {
        let mut req = post_fixture();
        req.headers_mut().remove("x-api-key");
        req
    }

    fn with_header(name: &'static str, value: &str) -> Request {
        let mut req = without_credentials();
        req.headers_mut()
            .insert(name, HeaderValue::from_str(value).unwrap());
        req
    }

    fn auth() -> AdminAuth {
        AdminAuth::new(Some(Secret::new(KEY)))
    }

    #[test]
    fn no_credentials_is_unauthorized() {
        assert_eq!(
            auth().authenticate(&without_credentials()),
            Err(ApiError::Unauthorized)
        );
    }

    #[test]
    fn the_right_key_in_x_api_key_or_bearer_is_the_admin() {
        assert_eq!(
            auth().authenticate(&with_header("x-api-key", KEY)),
            Ok(Principal::AdminKey)
        );
        let bearer = format!("Bearer {KEY}");
        assert_eq!(
            auth().authenticate(&with_header("authorization", &bearer)),
            Ok(Principal::AdminKey)
        );
        let lower = format!("bearer {KEY}");
        assert_eq!(
            auth().authenticate(&with_header("authorization", &lower)),
            Ok(Principal::AdminKey)
        );
    }

    #[test]
    fn a_wrong_key_is_forbidden_even_when_it_shares_a_prefix() {
        assert_eq!(
            auth().authenticate(&with_header("x-api-key", "local-admin-ke")),
            Err(ApiError::Forbidden)
        );
        assert_eq!(
            auth().authenticate(&with_header("x-api-key", "local-admin-key-0001x")),
            Err(ApiError::Forbidden)
        );
        assert_eq!(
            auth().authenticate(&with_header("authorization", "Basic YWRtaW46YWRtaW4=")),
            Err(ApiError::Forbidden)
        );
    }

    #[test]
    fn empty_credentials_count_as_none() {
        assert_eq!(
            auth().authenticate(&with_header("x-api-key", "  ")),
            Err(ApiError::Unauthorized)
        );
        assert_eq!(
            auth().authenticate(&with_header("authorization", "Bearer  ")),
            Err(ApiError::Forbidden)
        );
    }

    #[test]
    fn a_key_is_forbidden_when_only_iam_is_configured() {
        assert_eq!(
            AdminAuth::new(None).authenticate(&with_header("x-api-key", KEY)),
            Err(ApiError::Forbidden)
        );
    }

    #[test]
    fn an_iam_principal_from_the_gateway_needs_no_key() {
        // GIVEN the fixture of a SigV4-signed call through an IAM-authorized route
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/events/apigw-v2-post-test-iam.json"
        );
        let req = lambda_http::request::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        // WHEN it is authenticated, even with no key configured
        let principal = AdminAuth::new(None).authenticate(&req).unwrap();
        // THEN the caller is the IAM principal
        assert_eq!(
            principal,
            Principal::Iam {
                arn: "arn:aws:iam::123456789012:user/prematch-admin".into()
            }
        );
        assert_eq!(
            principal.id(),
            "iam:arn:aws:iam::123456789012:user/prematch-admin"
        );
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        assert!(!format!("{:?}", auth()).contains(KEY));
    }
}
