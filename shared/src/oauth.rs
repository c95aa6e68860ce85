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

use crate::app::App;
use crate::catalog::{ClientAuth, OAuth2Spec, Provider};
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

async fn client(app: &App, provider: &Provider, with_secret: bool) -> Result<Client> {
    let spec = spec(provider)?;
    let configured = app.config.oauth_clients.get(&provider.id).ok_or_else(|| {
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
            RedirectUrl::new(app.config.oauth_redirect_uri.to_string())
                .map_err(bad_url("OAUTH_REDIRECT_URI"))?,
        )
        .set_auth_type(match spec.client_auth {
            ClientAuth::Basic => AuthType::BasicAuth,
            ClientAuth::Body => AuthType::RequestBody,
        });
    if with_secret {
        let secret = app.vault.plain(&configured.client_secret_name).await?;
        client = client.set_client_secret(ClientSecret::new(secret.expose_secret().to_string()));
    }
    Ok(client)
}

pub async fn authorization(app: &App, provider: &Provider) -> Result<Authorization> {
    let spec = spec(provider)?;
    let client = client(app, provider, false).await?;
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

pub async fn exchange_code(
    app: &App,
    provider: &Provider,
    code: &str,
    pkce_verifier: Option<&str>,
) -> Result<TokenSet> {
    let client = client(app, provider, true).await?;
    let mut request = client.exchange_code(AuthorizationCode::new(code.to_string()));
    if let Some(v) = pkce_verifier {
        request = request.set_pkce_verifier(PkceCodeVerifier::new(v.to_string()));
    }
    let response = request
        .request_async(app.http()?)
        .await
        .map_err(|e| token_error(provider, e))?;
    Ok(token_set(&response, None, app.config.clock.now()))
}

/// Uses the refresh token; the caller must hold the connection's lease and must
/// store the returned set before using it (vendors that rotate have already
/// invalidated the old refresh token).
pub async fn refresh(app: &App, provider: &Provider, current: &TokenSet) -> Result<TokenSet> {
    let refresh = current
        .refresh_token
        .as_ref()
        .ok_or_else(|| Error::NeedsReconnect {
            provider: provider.id.clone(),
            reason: "the access token expired and the vendor gave no refresh token".into(),
        })?;
    let client = client(app, provider, true).await?;
    let response = client
        .exchange_refresh_token(&RefreshToken::new(refresh.expose_secret().to_string()))
        .request_async(app.http()?)
        .await
        .map_err(|e| token_error(provider, e))?;
    Ok(token_set(&response, Some(refresh), app.config.clock.now()))
}
