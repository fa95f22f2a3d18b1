//! What an `object_store` error means, as one clear line naming the remote: access denied,
//! no such bucket, no connection, no answer, or the server's own code and message.

use super::{ENV_KEY_ID, ENV_SECRET, Remote};
use crate::error::Error;
use object_store::client::HttpErrorKind;

impl Remote {
    /// Turns an `object_store` error into one clear line naming this remote.
    pub(super) fn fail(&self, action: &str, err: object_store::Error) -> Error {
        let diagnosis = Diagnosis::of(&err);
        let message = match (&diagnosis.status, &diagnosis.transport) {
            (Some(403) | Some(401), _) => format!(
                "access denied while {action} ({}): check {ENV_KEY_ID} and {ENV_SECRET}, and the key's rights on bucket {}",
                diagnosis.code_or_status(),
                self.bucket
            ),
            _ if diagnosis.code.as_deref() == Some("NoSuchBucket") => {
                format!("bucket {} does not exist at {}", self.bucket, self.endpoint)
            }
            (_, Some(HttpErrorKind::Connect)) => format!(
                "cannot connect to {} while {action}: {} ({})",
                self.endpoint,
                diagnosis.root,
                self.retried(&diagnosis)
            ),
            (_, Some(HttpErrorKind::Timeout)) => format!(
                "no answer from {} while {action}: {} ({})",
                self.endpoint,
                diagnosis.root,
                self.retried(&diagnosis)
            ),
            (None, Some(_)) => format!(
                "connection to {} failed while {action}: {} ({})",
                self.endpoint,
                diagnosis.root,
                self.retried(&diagnosis)
            ),
            _ => format!("{action} failed: {}", diagnosis.summary()),
        };
        Error::Remote {
            remote: self.name.clone(),
            message,
        }
    }
}

impl Remote {
    /// How long a failed request was retried, as the client reported it.
    fn retried(&self, diagnosis: &Diagnosis) -> String {
        let timeout = self.retry_secs;
        match diagnosis.retries {
            Some(n) => format!("tried {} times over retry_timeout_secs = {timeout}", n + 1),
            None => format!("not retried; retry_timeout_secs = {timeout}"),
        }
    }
}

/// True when `err` says an object (not the bucket) does not exist.
pub(super) fn is_missing_object(err: &object_store::Error) -> bool {
    matches!(err, object_store::Error::NotFound { .. })
        && Diagnosis::of(err).code.as_deref() != Some("NoSuchBucket")
}

/// What an `object_store` error says, picked apart.
struct Diagnosis {
    /// HTTP status, when the server answered.
    status: Option<u16>,
    /// The S3 error code (`AccessDenied`, `NoSuchBucket`, ...), when the server sent one.
    code: Option<String>,
    /// The S3 error message, when the server sent one.
    message: Option<String>,
    /// The transport failure, when the request got no answer.
    transport: Option<HttpErrorKind>,
    /// The innermost cause, such as "Connection refused (os error 111)".
    root: String,
    /// The whole error as one line.
    text: String,
    /// How many times the client retried the request, when it did.
    retries: Option<u64>,
}

impl Diagnosis {
    fn of(err: &object_store::Error) -> Diagnosis {
        let text = one_line(&err.to_string());
        let mut transport = None;
        let mut root = text.clone();
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = cause {
            if let Some(http) = e.downcast_ref::<object_store::client::HttpError>() {
                transport = Some(http.kind());
            }
            root = one_line(&e.to_string());
            cause = e.source();
        }
        let status = match err {
            object_store::Error::PermissionDenied { .. } => Some(403),
            object_store::Error::Unauthenticated { .. } => Some(401),
            object_store::Error::NotFound { .. } => Some(404),
            _ => between(&text, "status code: ", " ").and_then(|s| s.parse().ok()),
        };
        Diagnosis {
            status,
            code: between(&text, "<Code>", "</Code>"),
            message: between(&text, "<Message>", "</Message>"),
            transport,
            root,
            retries: between(&text, ", after ", " retries").and_then(|n| n.parse().ok()),
            text,
        }
    }

    /// "HTTP 403 AccessDenied" or "HTTP 403".
    fn code_or_status(&self) -> String {
        let status = self
            .status
            .map_or_else(String::new, |s| format!("HTTP {s}"));
        match &self.code {
            Some(code) => format!("{status} {code}").trim().to_string(),
            None => status,
        }
    }

    /// A short description: status, code and message when the server sent them.
    fn summary(&self) -> String {
        match (&self.code, &self.message) {
            (Some(_), Some(message)) => format!("{}: {message}", self.code_or_status()),
            (Some(_), None) => self.code_or_status(),
            _ => shorten(&self.text, 300),
        }
    }
}

/// The text between the first `start` and the next `end` in `text`.
fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let rest = &text[text.find(start)? + start.len()..];
    let value = rest.find(end).map_or(rest, |i| &rest[..i]);
    Some(value.to_string()).filter(|v| !v.is_empty())
}

/// `text` on one line, with runs of whitespace collapsed.
pub(super) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `max` characters of `text`, marked when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_error_texts_are_picked_apart() {
        let text = "Server returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\"?>\n<Error><Code>AccessDenied</Code><Message>Forbidden: bad key</Message></Error>";
        assert_eq!(
            between(text, "<Code>", "</Code>").as_deref(),
            Some("AccessDenied")
        );
        assert_eq!(between(text, "status code: ", " ").as_deref(), Some("403"));
        assert!(!one_line(text).contains('\n'));
        assert_eq!(shorten("abcdef", 3), "abc...");
    }
}
