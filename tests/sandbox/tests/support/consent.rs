//! The sandboxes' OAuth consent page, driven without a browser.

use reqwest::StatusCode;

pub fn unescape_html(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// `(name, value)` of every `<input type="hidden" name=".." value="..">` in the page.
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    const START: &str = "<input type=\"hidden\" name=\"";
    let mut fields = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(START) {
        rest = &rest[i + START.len()..];
        let Some((name, after)) = rest.split_once("\" value=\"") else {
            break;
        };
        let Some((value, after)) = after.split_once('"') else {
            break;
        };
        fields.push((unescape_html(name), unescape_html(value)));
        rest = after;
    }
    fields
}

/// GETs the consent page (titled `Authorize Seatscope — {sandbox}`), posts its form to
/// `action` with `decision`, returns the redirect `Location`.
pub async fn consent_form(
    client: &reqwest::Client,
    authorize_url: &str,
    decision: &str,
    sandbox: &str,
    action: &str,
) -> String {
    let page = client
        .get(authorize_url)
        .send()
        .await
        .expect("GET authorize");
    assert_eq!(page.status(), StatusCode::OK);
    let base = {
        let u = url::Url::parse(authorize_url).expect("URL");
        format!("{}://{}", u.scheme(), u.authority())
    };
    let html = page.text().await.expect("page body");
    assert!(html.contains(&format!("<title>Authorize Seatscope — {sandbox}</title>")));
    assert!(html.contains(&format!("action=\"{action}\"")));
    let mut form = hidden_inputs(&html);
    form.push(("decision".into(), decision.into()));
    let response = client
        .post(format!("{base}{action}"))
        .form(&form)
        .send()
        .await
        .expect("POST decision");
    assert_eq!(response.status(), StatusCode::FOUND);
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location header")
        .to_string()
}
