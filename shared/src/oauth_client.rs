//! OAuth 2.0 with the `oauth2` crate: authorize URLs (state + PKCE S256), code
//! exchange and refresh. Client secrets are read from Secrets Manager by name.

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError,
    Scope, TokenResponse, TokenUrl,
};
use secrecy::ExposeSecret;
use time::OffsetDateTime;

use crate::deps::Deps;
use crate::domain::catalog::{ClientAuth, OAuth2Spec, Provider};
use crate::error::{Error, Result};
use crate::vault::TokenSet;

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// What the authorize redirect needs, and what must be kept for the callback.
pub struct Authorization {
    pub url: String,
    /// 256-bit random state, base64url.
    pub state: String,
    pub pkce_verifier: Option<String>,
}

fn spec(provider: &Provider) -> Result<&OAuth2Spec> {
    provider.oauth2.as_ref().ok_or_else(|| {
        Error::bad_request(
            "auth_mode_unsupported",
            format!("{} does not connect with OAuth", provider.name),
        )
    })
}

async fn client(deps: &Deps, provider: &Provider, with_secret: bool) -> Result<Client> {
    let spec = spec(provider)?;
    let configured = deps.config.oauth_clients.get(&provider.id).ok_or_else(|| {
        Error::Config(format!(
            "no OAuth client is configured for {} ({}_CLIENT_ID)",
            provider.name,
            provider.env_prefix()
        ))
    })?;
    let bad_url = |what: &str| {
        let what = what.to_string();
        move |e: url::ParseError| Error::Config(format!("{what} is not a valid URL: {e}"))
    };
    let mut client = BasicClient::new(ClientId::new(configured.client_id.clone()))
        .set_auth_uri(AuthUrl::new(spec.authorize_url.clone()).map_err(bad_url("authorize URL"))?)
        .set_token_uri(TokenUrl::new(spec.token_url.clone()).map_err(bad_url("token URL"))?)
        .set_redirect_uri(
            RedirectUrl::new(deps.config.oauth_redirect_uri.to_string())
                .map_err(bad_url("OAUTH_REDIRECT_URI"))?,
        )
        .set_auth_type(match spec.client_auth {
            ClientAuth::Basic => AuthType::BasicAuth,
            ClientAuth::Body => AuthType::RequestBody,
        });
    if with_secret {
        let secret = deps.vault.plain(&configured.client_secret_name).await?;
        client = client.set_client_secret(ClientSecret::new(secret.expose_secret().to_string()));
    }
    Ok(client)
}

pub async fn authorization(deps: &Deps, provider: &Provider) -> Result<Authorization> {
    let spec = spec(provider)?;
    let client = client(deps, provider, false).await?;
    let mut request = client
        .authorize_url(|| CsrfToken::new_random_len(32))
        .add_scopes(spec.scopes.iter().cloned().map(Scope::new));
    let mut verifier = None;
    if spec.pkce {
        let (challenge, v) = PkceCodeChallenge::new_random_sha256();
        request = request.set_pkce_challenge(challenge);
        verifier = Some(v.secret().clone());
    }
    let (url, state) = request.url();
    Ok(Authorization {
        url: url.to_string(),
        state: state.secret().clone(),
        pkce_verifier: verifier,
    })
}

fn token_set(
    response: &oauth2::basic::BasicTokenResponse,
    previous_refresh: Option<&secrecy::SecretString>,
    now: OffsetDateTime,
) -> TokenSet {
    TokenSet {
        access_token: response.access_token().secret().clone().into(),
        // Keep the old refresh token when a vendor does not rotate it.
        refresh_token: response
            .refresh_token()
            .map(|r| r.secret().clone().into())
            .or_else(|| previous_refresh.cloned()),
        expires_at: response
            .expires_in()
            .map(|d| now.unix_timestamp() + d.as_secs() as i64),
        scope: response
            .scopes()
            .map(|s| s.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(" ")),
        obtained_at: Some(now.unix_timestamp()),
    }
}

fn token_error(
    provider: &Provider,
    e: RequestTokenError<
        oauth2::HttpClientError<reqwest::Error>,
        oauth2::StandardErrorResponse<BasicErrorResponseType>,
    >,
) -> Error {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let reason = r
                .error_description()
                .cloned()
                .unwrap_or_else(|| r.error().to_string());
            match r.error() {
                BasicErrorResponseType::InvalidGrant => Error::NeedsReconnect {
                    provider: provider.id.clone(),
                    reason: format!("invalid_grant: {reason}"),
                },
                other => Error::vendor(&provider.id, format!("token endpoint: {other}: {reason}")),
            }
        }
        // Transport errors and unparseable bodies: transient from our side. The
        // request (with the code or refresh token) is not included in the message.
        RequestTokenError::Request(_) => {
            Error::vendor(&provider.id, "the token endpoint could not be reached")
        }
        RequestTokenError::Parse(_, _) => Error::vendor(
            &provider.id,
            "the token endpoint answered with an unreadable body",
        ),
        RequestTokenError::Other(m) => Error::vendor(&provider.id, format!("token endpoint: {m}")),
    }
}

/// The code of a token response refused for its granted scope or token type.
pub const TOKEN_REFUSED: &str = "token_refused";

/// A token response is kept only if it is a Bearer token (any case) and, when the
/// vendor says which scope it granted, that scope is exactly the one asked for
/// (besides the vendor's documented identity-only extras): broader would break
/// the read-only promise, narrower would fail later. An absent scope means the
/// requested one (RFC 6749 §5.1).
pub fn check_token_response(
    provider: &Provider,
    token_type: &oauth2::basic::BasicTokenType,
    granted: Option<&[String]>,
) -> Result<()> {
    let spec = spec(provider)?;
    let refused = |what: String| {
        Err(Error::bad_request(
            TOKEN_REFUSED,
            format!(
                "{} was not connected: {what}. Nothing was stored. Seatscope only keeps \
                 read access; try again, approving only what Seatscope asks for.",
                provider.name
            ),
        ))
    };
    if *token_type != oauth2::basic::BasicTokenType::Bearer {
        return refused(format!(
            "{} issued a token of type '{}', not a Bearer token",
            provider.name,
            token_type.as_ref()
        ));
    }
    if let Some(granted) = granted {
        use std::collections::BTreeSet;
        let asked: BTreeSet<&str> = spec.scopes.iter().map(String::as_str).collect();
        let got: BTreeSet<&str> = granted
            .iter()
            .flat_map(|s| s.split_whitespace())
            .filter(|s| !spec.always_granted.iter().any(|a| a == s))
            .collect();
        if got != asked {
            let list = |s: &BTreeSet<&str>| s.iter().copied().collect::<Vec<_>>().join(" ");
            return refused(format!(
                "{} granted the scope '{}' where Seatscope asked for '{}'",
                provider.name,
                list(&got),
                list(&asked)
            ));
        }
    }
    Ok(())
}

pub async fn exchange_code(
    deps: &Deps,
    provider: &Provider,
    code: &str,
    pkce_verifier: Option<&str>,
) -> Result<TokenSet> {
    let client = client(deps, provider, true).await?;
    let mut request = client.exchange_code(AuthorizationCode::new(code.to_string()));
    if let Some(v) = pkce_verifier {
        request = request.set_pkce_verifier(PkceCodeVerifier::new(v.to_string()));
    }
    let response = request
        .request_async(deps.http()?)
        .await
        .map_err(|e| token_error(provider, e))?;
    let granted: Option<Vec<String>> = response
        .scopes()
        .map(|s| s.iter().map(|x| x.to_string()).collect());
    check_token_response(provider, response.token_type(), granted.as_deref())?;
    Ok(token_set(&response, None, deps.config.clock.now()))
}

/// Uses the refresh token; the caller must hold the connection's refresh lock
/// (`ops::credentials`) and must store the returned set before using it (vendors that rotate have already
/// invalidated the old refresh token).
pub async fn refresh(deps: &Deps, provider: &Provider, current: &TokenSet) -> Result<TokenSet> {
    let refresh = current
        .refresh_token
        .as_ref()
        .ok_or_else(|| Error::NeedsReconnect {
            provider: provider.id.clone(),
            reason: "the access token expired and the vendor gave no refresh token".into(),
        })?;
    let client = client(deps, provider, true).await?;
    let response = client
        .exchange_refresh_token(&RefreshToken::new(refresh.expose_secret().to_string()))
        .request_async(deps.http()?)
        .await
        .map_err(|e| token_error(provider, e))?;
    Ok(token_set(&response, Some(refresh), deps.config.clock.now()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oauth2::basic::BasicTokenType;

    #[test]
    fn only_bearer_tokens_of_exactly_the_asked_scope_are_kept() {
        let catalog = crate::domain::catalog::Catalog::load(|_| None).unwrap();
        let pd = catalog.get("pagerduty").unwrap();
        let pandadoc = catalog.get("pandadoc").unwrap();
        let scope = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let bearer = BasicTokenType::Bearer;
        assert!(check_token_response(pd, &bearer, Some(&scope("openid read"))).is_ok());
        assert!(check_token_response(pd, &bearer, Some(&scope("read"))).is_ok());
        assert!(check_token_response(pd, &bearer, None).is_ok());
        assert!(check_token_response(pandadoc, &bearer, Some(&scope("read"))).is_ok());
        for bad in ["openid read write", "read write", "openid", "", "write"] {
            let e = check_token_response(pd, &bearer, Some(&scope(bad))).unwrap_err();
            assert_eq!((e.status(), e.code()), (400, TOKEN_REFUSED), "{bad}");
        }
        assert!(check_token_response(pandadoc, &bearer, Some(&scope("openid read"))).is_err());
        assert!(check_token_response(pandadoc, &bearer, Some(&scope("read+write"))).is_err());
        for t in [BasicTokenType::Mac, BasicTokenType::Extension("pop".into())] {
            let e = check_token_response(pd, &t, Some(&scope("openid read"))).unwrap_err();
            assert_eq!(e.code(), TOKEN_REFUSED);
        }
    }
}
