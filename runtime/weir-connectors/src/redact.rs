//! Keeping secrets out of logs: URLs may carry credentials (`https://user:pass@host/`) or
//! tokens in their query (`?token=...`); what Weir logs or shows of them hides both.

/// `url` with its user information and query values replaced by `***`.
pub fn url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_string(),
    };
    let (path, fragment) = match path.split_once('#') {
        Some((p, _)) => (p, "#***"),
        None => (path, ""),
    };
    let path = match path.split_once('?') {
        Some((p, query)) => {
            let hidden: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) => format!("{k}=***"),
                    None => pair.to_string(),
                })
                .collect();
            format!("{p}?{}", hidden.join("&"))
        }
        None => path.to_string(),
    };
    match scheme {
        Some(s) => format!("{s}://{authority}{path}{fragment}"),
        None => format!("{authority}{path}{fragment}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_and_query_values_are_hidden() {
        assert_eq!(
            super::url("https://user:s3cret@example.com:8443/in?token=abc&x=1"),
            "https://***@example.com:8443/in?token=***&x=***"
        );
        assert_eq!(
            super::url("http://127.0.0.1:9/ingest"),
            "http://127.0.0.1:9/ingest"
        );
        assert_eq!(super::url("https://h/p#frag"), "https://h/p#***");
    }
}
