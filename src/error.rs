//! The one error type of the dashboard's own endpoints: server functions, exports, the session
//! check. Each kind has its HTTP status; the message is what the user reads (never a secret or
//! an internal detail: those are logged). Server functions send it to the browser as JSON, so
//! the page shows our message, not the framework's wrapping of it.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppError {
    /// The request is wrong: too long, or arguments that do not decode. 400.
    BadRequest(String),
    /// No data can be served (yet): the first sync runs or failed. 503.
    Unavailable {
        message: String,
        advice: String,
        request_id: Option<String>,
    },
    /// Not now: a refresh asked for too soon, while one runs, or past the quota. 429.
    Refused(String),
    /// Sign in first. 401.
    Unauthorized,
    /// A bug or a crashed task; details are in the server log. 500.
    Internal(String),
}

impl AppError {
    pub fn status(&self) -> u16 {
        match self {
            AppError::BadRequest(_) => 400,
            AppError::Unavailable { .. } => 503,
            AppError::Refused(_) => 429,
            AppError::Unauthorized => 401,
            AppError::Internal(_) => 500,
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::BadRequest(m) | AppError::Refused(m) => f.write_str(m),
            // The message may already say what to do and quote the Request-ID (errors from
            // WeChat Pay do): each is said once.
            AppError::Unavailable {
                message,
                advice,
                request_id,
            } => {
                f.write_str(message)?;
                if !message.contains(advice.as_str()) {
                    write!(f, " ({advice})")?;
                }
                match request_id {
                    Some(id) if !message.contains(id.as_str()) => write!(f, " Request-ID: {id}"),
                    _ => Ok(()),
                }
            }
            AppError::Unauthorized => {
                f.write_str("Sign in first: this dashboard requires a password (POST /login).")
            }
            AppError::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for AppError {}

impl leptos::server_fn::error::FromServerFnError for AppError {
    type Encoder = leptos::server_fn::codec::JsonEncoding;

    /// The framework's own failures: arguments that do not decode are the caller's fault;
    /// the rest (the network, the response) are not.
    fn from_server_fn_error(e: leptos::server_fn::error::ServerFnErrorErr) -> Self {
        use leptos::server_fn::error::ServerFnErrorErr as E;
        match e {
            E::Args(m) | E::MissingArg(m) | E::UnsupportedRequestMethod(m) => {
                AppError::BadRequest(format!("the request's arguments are not valid: {m}"))
            }
            // On the server, what does not decode is the request's arguments; in the browser,
            // the server's answer.
            #[cfg(feature = "ssr")]
            E::Deserialization(m) => {
                AppError::BadRequest(format!("the request's arguments are not valid: {m}"))
            }
            E::Request(m) => AppError::Unavailable {
                message: format!("the server could not be reached: {m}"),
                advice: "check the connection and reload".into(),
                request_id: None,
            },
            other => AppError::Internal(other.to_string()),
        }
    }
}

#[cfg(feature = "ssr")]
impl axum::response::IntoResponse for AppError {
    fn into_response(self) -> axum::response::Response {
        let status = axum::http::StatusCode::from_u16(self.status())
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            )],
            format!("{self}\n"),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};

    #[test]
    fn framework_failures_map_to_our_kinds_and_round_trip_as_json() {
        let e = AppError::from_server_fn_error(ServerFnErrorErr::Args("expected a string".into()));
        assert_eq!(e.status(), 400);
        #[cfg(feature = "ssr")]
        assert_eq!(
            AppError::from_server_fn_error(ServerFnErrorErr::Deserialization("x".into())).status(),
            400
        );
        assert!(!e.to_string().contains("server function"), "{e}");
        let back = AppError::de(e.ser());
        assert_eq!(back, e);
        let u = AppError::Unavailable {
            message: "no snapshot yet".into(),
            advice: "wait".into(),
            request_id: Some("RID".into()),
        };
        assert_eq!(AppError::de(u.ser()), u);
        assert_eq!(u.status(), 503);
    }
}
