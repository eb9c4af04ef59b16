//! Bearer-token authorisation with `read` and `write` scopes.
//!
//! The tokens file holds one line per token: the SHA-256 of the token (hex),
//! its scopes, and an optional name, e.g.
//! `9f86d0...0f00a08 read,write news-platform`. Only hashes are stored; a
//! presented token is hashed and compared with every stored hash in
//! constant time. The table `METHODS` names what each method needs: health
//! stays open; reflection and the reads need `read`; the writes need
//! `write` (which includes `read`). A method the table does not name is
//! refused (UNIMPLEMENTED, `UNKNOWN_METHOD`), with or without tokens.

use std::future::{Ready, ready};
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::{Context as _, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::Either;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::error::ERROR_DOMAIN;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scopes {
    pub read: bool,
    pub write: bool,
}

/// The accepted tokens, by hash.
#[derive(Debug, Clone)]
pub struct Tokens {
    entries: Vec<([u8; 32], Scopes, String)>,
}

impl Tokens {
    /// Reads a tokens file; a malformed line is an error naming it.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read tokens file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("tokens file {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut fields = line.split_whitespace();
            let (Some(hash), Some(scopes)) = (fields.next(), fields.next()) else {
                bail!("line {}: expected `<sha256 hex> <scopes> [name]`", i + 1);
            };
            let mut digest = [0u8; 32];
            hex::decode_to_slice(hash, &mut digest)
                .map_err(|_| anyhow::anyhow!("line {}: {hash:?} is not a SHA-256 in hex", i + 1))?;
            let mut s = Scopes {
                read: false,
                write: false,
            };
            for scope in scopes.split(',') {
                match scope {
                    "read" => s.read = true,
                    "write" => s.write = true,
                    other => bail!("line {}: unknown scope {other:?} (read, write)", i + 1),
                }
            }
            let name = fields.collect::<Vec<_>>().join(" ");
            entries.push((digest, s, name));
        }
        Ok(Self { entries })
    }

    /// The scopes of a presented token, comparing with every entry in
    /// constant time.
    pub fn scopes_of(&self, token: &str) -> Option<Scopes> {
        self.entry_of(token).map(|(scopes, _)| scopes)
    }

    /// The scopes and caller of a presented token. A token's caller is its
    /// name in the file, or the start of its hash when it has none.
    fn entry_of(&self, token: &str) -> Option<(Scopes, Caller)> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (hash, scopes, name) in &self.entries {
            if bool::from(hash.ct_eq(&digest)) {
                found = Some((*scopes, hash, name));
            }
        }
        found.map(|(scopes, hash, name)| {
            let caller = if name.is_empty() {
                Caller::new(&format!("token:{}", hex::encode(&hash[..6])))
            } else {
                Caller::new(name)
            };
            (scopes, caller)
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A new random token (256 bits) and its tokens-file line.
pub fn new_token(scopes: &str, name: &str) -> anyhow::Result<(String, String)> {
    Tokens::parse(&format!("{} {scopes}", "0".repeat(64))).context("bad scopes")?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let token = format!("mt_{}", URL_SAFE_NO_PAD.encode(bytes));
    let line = format!(
        "{} {scopes} {name}",
        hex::encode(Sha256::digest(token.as_bytes()))
    );
    Ok((token, line.trim_end().to_owned()))
}

/// Who made a call: the name of the token it presented. Put in the
/// request's extensions by the auth layer, for per-caller limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(Arc<str>);

impl Caller {
    pub fn new(name: &str) -> Self {
        Self(Arc::from(name))
    }

    pub fn name(&self) -> Arc<str> {
        self.0.clone()
    }
}

/// Where the auth layer leaves the caller's name for the edge (the `caller`
/// label of the call's metrics): the edge puts an empty slot in the
/// request's extensions, the auth layer fills it.
#[derive(Debug, Clone, Default)]
pub struct CallerSlot(Arc<std::sync::OnceLock<Arc<str>>>);

impl CallerSlot {
    pub fn get(&self) -> Option<&str> {
        self.0.get().map(|name| &**name)
    }

    fn set(&self, name: Arc<str>) {
        let _ = self.0.set(name);
    }
}

/// What a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Nothing,
    Read,
    Write,
}

/// Every method served, and what it needs. A method added to the service
/// must be added here, or it is refused.
const METHODS: [(&str, Need); 18] = [
    ("/meetings.v1.MeetingService/CreateMeeting", Need::Write),
    ("/meetings.v1.MeetingService/ImportMeetings", Need::Write),
    ("/meetings.v1.MeetingService/UpdateMeeting", Need::Write),
    ("/meetings.v1.MeetingService/DeleteMeeting", Need::Write),
    ("/meetings.v1.MeetingService/MergeMeetings", Need::Write),
    ("/meetings.v1.MeetingService/GetMeeting", Need::Read),
    ("/meetings.v1.MeetingService/ListMeetings", Need::Read),
    (
        "/meetings.v1.MeetingService/StreamMeetingsByCountryPair",
        Need::Read,
    ),
    ("/meetings.v1.MeetingService/WatchMeetings", Need::Read),
    (
        "/meetings.v1.MeetingService/GetCountryPairSummary",
        Need::Read,
    ),
    (
        "/meetings.v1.MeetingService/FindDuplicateMeetings",
        Need::Read,
    ),
    (
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        Need::Read,
    ),
    (
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        Need::Read,
    ),
    ("/grpc.health.v1.Health/Check", Need::Nothing),
    ("/grpc.health.v1.Health/Watch", Need::Nothing),
    // Later versions of the health protocol; refused by tonic's health
    // service as unknown, but open like the rest of health.
    ("/grpc.health.v1.Health/List", Need::Nothing),
    ("/grpc.health.v1.Health/ListStream", Need::Nothing),
    ("/grpc.health.v1.Health/WatchStream", Need::Nothing),
];

/// The RPC name of a served method's path (`CreateMeeting`); None for a
/// path the table does not name.
pub fn served_method(path: &str) -> Option<&'static str> {
    METHODS
        .iter()
        .find(|(method, _)| *method == path)
        .and_then(|(method, _)| method.rsplit('/').next())
}

/// What a method needs; None for a method the table does not name.
fn need(path: &str) -> Option<Need> {
    METHODS
        .iter()
        .find(|(method, _)| *method == path)
        .map(|(_, need)| *need)
}

/// The accepted tokens, replaceable while the service runs (SIGHUP): each
/// call reads the set current at its arrival.
#[derive(Debug, Clone)]
pub struct TokenSet(Arc<std::sync::RwLock<Arc<Tokens>>>);

impl TokenSet {
    fn new(tokens: Tokens) -> Self {
        Self(Arc::new(std::sync::RwLock::new(Arc::new(tokens))))
    }

    fn current(&self) -> Arc<Tokens> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Takes `tokens` for the calls that arrive from now on.
    pub fn replace(&self, tokens: Tokens) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(tokens);
    }
}

/// Tower layer that checks the bearer token of every call.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    tokens: Option<TokenSet>,
}

impl AuthLayer {
    /// None: every caller is allowed everything.
    pub fn new(tokens: Option<Tokens>) -> Self {
        Self {
            tokens: tokens.map(TokenSet::new),
        }
    }

    /// The tokens, to replace them later (None when calls need none).
    pub fn tokens(&self) -> Option<TokenSet> {
        self.tokens.clone()
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Auth<S>;
    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            tokens: self.tokens.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    tokens: Option<TokenSet>,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Auth<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<S::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<ReqBody>) -> Self::Future {
        match self.check(&req) {
            Ok(caller) => {
                if let Some(caller) = caller {
                    // The name is the operator's label for a token (never
                    // the token): on the request span and in metrics.
                    tracing::Span::current().record("caller", &*caller.name());
                    if let Some(slot) = req.extensions().get::<CallerSlot>() {
                        slot.set(caller.name());
                    }
                    req.extensions_mut().insert(caller);
                }
                Either::Left(self.inner.call(req))
            }
            Err(status) => Either::Right(ready(Ok(status.into_http()))),
        }
    }
}

impl<S> Auth<S> {
    /// The caller, when calls need tokens.
    fn check<B>(&self, req: &http::Request<B>) -> Result<Option<Caller>, Status> {
        let Some(need) = need(req.uri().path()) else {
            return Err(denied(
                Code::Unimplemented,
                "UNKNOWN_METHOD",
                "this server has no such method",
            ));
        };
        let Some(tokens) = self.tokens.as_ref().map(TokenSet::current) else {
            return Ok(None);
        };
        if need == Need::Nothing {
            return Ok(None);
        }
        let token = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let Some(token) = token else {
            return Err(denied(
                Code::Unauthenticated,
                "UNAUTHENTICATED",
                "send a token as `authorization: Bearer <token>`",
            ));
        };
        let Some((scopes, caller)) = tokens.entry_of(token) else {
            return Err(denied(
                Code::Unauthenticated,
                "UNAUTHENTICATED",
                "the token is not valid",
            ));
        };
        let allowed = match need {
            Need::Nothing => true,
            Need::Read => scopes.read || scopes.write,
            Need::Write => scopes.write,
        };
        if allowed {
            Ok(Some(caller))
        } else {
            Err(denied(
                Code::PermissionDenied,
                "MISSING_SCOPE",
                "the token lacks the `write` scope this call needs",
            ))
        }
    }
}

fn denied(code: Code, reason: &str, message: &str) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, ERROR_DOMAIN, std::collections::HashMap::new());
    Status::with_error_details(code, message, details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_scopes_apply() {
        let (read, read_line) = new_token("read", "reader").unwrap();
        let (write, write_line) = new_token("write", "").unwrap();
        assert!(
            read.starts_with("mt_") && !read_line.contains(&read),
            "only the hash is in the line"
        );
        let tokens = Tokens::parse(&format!(
            "# comment\n\n{read_line}\n{write_line}  # the writer\n"
        ))
        .unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(
            tokens.scopes_of(&read),
            Some(Scopes {
                read: true,
                write: false
            })
        );
        assert_eq!(
            tokens.scopes_of(&write),
            Some(Scopes {
                read: false,
                write: true
            })
        );
        assert_eq!(tokens.scopes_of("mt_other"), None);
    }

    #[test]
    fn malformed_lines_are_named() {
        assert!(
            Tokens::parse("abc read")
                .unwrap_err()
                .to_string()
                .contains("line 1")
        );
        let line = format!("{} admin", "0".repeat(64));
        assert!(
            Tokens::parse(&format!("\n{line}"))
                .unwrap_err()
                .to_string()
                .contains("line 2")
        );
        assert!(new_token("root", "").is_err());
    }

    #[test]
    fn what_each_path_needs() {
        assert_eq!(need("/grpc.health.v1.Health/Check"), Some(Need::Nothing));
        assert_eq!(
            need("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            Some(Need::Read)
        );
        assert_eq!(
            need("/meetings.v1.MeetingService/GetMeeting"),
            Some(Need::Read)
        );
        assert_eq!(
            need("/meetings.v1.MeetingService/DeleteMeeting"),
            Some(Need::Write)
        );
        assert_eq!(need("/unknown/Method"), None);
        assert_eq!(need("/meetings.v1.MeetingService/Nope"), None);
        assert_eq!(need("/meetings.v1.MeetingService/GetMeeting/"), None);
    }

    #[test]
    fn every_method_of_the_service_is_in_the_table() {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(crate::pb::FILE_DESCRIPTOR_SET).unwrap();
        let mut methods = 0;
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    let path = format!("/{}.{}/{}", file.package(), service.name(), method.name());
                    assert!(need(&path).is_some(), "{path} is not in the auth table");
                    methods += 1;
                }
            }
        }
        assert_eq!(methods, 11);
    }
}
