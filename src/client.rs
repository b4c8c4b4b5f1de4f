//! A client of the HTTP service (`assay serve`): append envelopes, read the log, fetch
//! checkpoints and proofs, ask the dispatch gate, store and fetch evidence blobs. Used by the CLI's `--server` option.
//!
//! Nothing it returns need be trusted: checkpoints are signed notes and proofs verify with
//! `assay_events::merkle` against them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use assay_events::keys::SignerKey;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::blobs::{BlobName, BlobState, CHUNK_BYTES, Check, signed};
use crate::http::wire::{
    AppendResponse, BlobPutBody, CheckpointList, ConsistencyProofSchema, DispatchResponse, ErrorBody,
    EventsPage, EvidenceSyncBody, Health, InclusionProofSchema,
};
use crate::view::RecordView;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server refused the request (its JSON error).
    #[error("{status}: {detail} [{error}]")]
    Api { status: u16, error: String, detail: String, index: Option<usize> },
    #[error("cannot reach {url}: {source}")]
    Transport { url: String, source: reqwest::Error },
    #[error("unexpected response from {url}: {detail}")]
    Decode { url: String, detail: String },
    #[error("envelope {index} is not JSON: {detail}")]
    Input { index: usize, detail: String },
    #[error("bad server URL {0:?}: it must start with http:// or https://")]
    Url(String),
    #[error("{path}: {source}")]
    File { path: String, source: std::io::Error },
}

/// Longest a blob upload or download may take (the 120 s of other requests would cut large
/// evidence files short).
const BLOB_TIMEOUT: Duration = Duration::from_secs(3600);

/// The reply to an append, and whether anything new was stored (201) or all was already (200).
#[derive(Debug, Clone)]
pub struct Appended {
    pub response: AppendResponse,
    pub created: bool,
}

/// A client of one server.
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Client {
    /// A client of the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Result<Client, ClientError> {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Url(base.to_owned()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|source| ClientError::Transport { url: base.to_owned(), source })?;
        Ok(Client { base: base.trim_end_matches('/').to_owned(), http, token: None })
    }

    /// Sends `Authorization: Bearer <token>` with every read.
    pub fn with_token(mut self, token: Option<String>) -> Client {
        self.token = token;
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        r
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let url = self.base.clone();
        let response =
            req.send().await.map_err(|source| ClientError::Transport { url: url.clone(), source })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|source| ClientError::Transport { url, source })?;
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(e) => ClientError::Api { status, error: e.error, detail: e.detail, index: e.index },
            Err(_) => ClientError::Api { status, error: "http".to_owned(), detail: text, index: None },
        })
    }

    async fn json<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T, ClientError> {
        let response = self.send(req).await?;
        let url = response.url().to_string();
        let bytes =
            response.bytes().await.map_err(|source| ClientError::Transport { url: url.clone(), source })?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode { url, detail: e.to_string() })
    }

    /// Appends envelopes (JSON texts, at most 1000) as one all-or-nothing request.
    pub async fn append<E: AsRef<[u8]>>(&self, envelopes: &[E]) -> Result<Appended, ClientError> {
        let mut body = Vec::with_capacity(envelopes.iter().map(|e| e.as_ref().len() + 1).sum::<usize>() + 16);
        body.extend_from_slice(b"{\"envelopes\":[");
        for (index, e) in envelopes.iter().enumerate() {
            let raw: &RawValue = serde_json::from_slice(e.as_ref())
                .map_err(|err| ClientError::Input { index, detail: err.to_string() })?;
            if index > 0 {
                body.push(b',');
            }
            body.extend_from_slice(raw.get().as_bytes());
        }
        body.extend_from_slice(b"]}");
        let req = self
            .request(reqwest::Method::POST, "/v1/events")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let response = self.send(req).await?;
        let created = response.status() == StatusCode::CREATED;
        let url = response.url().to_string();
        let bytes =
            response.bytes().await.map_err(|source| ClientError::Transport { url: url.clone(), source })?;
        let response =
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode { url, detail: e.to_string() })?;
        Ok(Appended { response, created })
    }

    /// One envelope to the dispatch gate; the request's record and the ledger's decision.
    pub async fn dispatch(&self, envelope: &[u8]) -> Result<DispatchResponse, ClientError> {
        let req = self
            .request(reqwest::Method::POST, "/v1/dispatch")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(envelope.to_vec());
        self.json(req).await
    }

    /// A page of records from `from` (at most `limit`, ≤ 1000), optionally by type and subject.
    pub async fn events(
        &self,
        from: u64,
        limit: u32,
        ty: Option<&str>,
        subject: Option<&str>,
    ) -> Result<EventsPage, ClientError> {
        let mut query: Vec<(&str, String)> = vec![("from", from.to_string()), ("limit", limit.to_string())];
        if let Some(t) = ty {
            query.push(("type", t.to_owned()));
        }
        if let Some(s) = subject {
            query.push(("subject", s.to_owned()));
        }
        self.json(self.request(reqwest::Method::GET, "/v1/events").query(&query)).await
    }

    /// One record by event digest (hex).
    pub async fn event(&self, digest: &str) -> Result<RecordView, ClientError> {
        self.json(self.request(reqwest::Method::GET, &format!("/v1/events/{digest}"))).await
    }

    /// The latest signed checkpoint note.
    pub async fn checkpoint(&self) -> Result<String, ClientError> {
        let response = self.send(self.request(reqwest::Method::GET, "/v1/checkpoint")).await?;
        let url = response.url().to_string();
        response.text().await.map_err(|source| ClientError::Transport { url, source })
    }

    pub async fn inclusion(&self, seq: u64, size: Option<u64>) -> Result<InclusionProofSchema, ClientError> {
        let mut query = vec![("seq", seq)];
        if let Some(s) = size {
            query.push(("size", s));
        }
        self.json(self.request(reqwest::Method::GET, "/v1/proof/inclusion").query(&query)).await
    }

    /// A page of signed checkpoints from tree size `from`.
    pub async fn checkpoints(&self, from: u64, limit: u32) -> Result<CheckpointList, ClientError> {
        let query = [("from", from), ("limit", u64::from(limit))];
        self.json(self.request(reqwest::Method::GET, "/v1/checkpoints").query(&query)).await
    }

    pub async fn consistency(&self, old: u64, new: u64) -> Result<ConsistencyProofSchema, ClientError> {
        let query = [("old", old), ("new", new)];
        self.json(self.request(reqwest::Method::GET, "/v1/proof/consistency").query(&query)).await
    }

    /// The cells of campaign run `run` with their outcomes (`GET /v1/campaigns/{run}`).
    pub async fn campaign_cells(&self, run: &str) -> Result<crate::http::wire::CampaignCells, ClientError> {
        self.json(self.request(reqwest::Method::GET, &format!("/v1/campaigns/{run}"))).await
    }

    /// The regression diff of campaign run `base` → `new` (`GET /v1/campaigns/{new}/diff`).
    pub async fn campaign_diff(
        &self,
        base: &str,
        new: &str,
    ) -> Result<assay_projections::campaign_diff::CampaignDiff, ClientError> {
        let req =
            self.request(reqwest::Method::GET, &format!("/v1/campaigns/{new}/diff")).query(&[("base", base)]);
        self.json(req).await
    }

    pub async fn health(&self) -> Result<Health, ClientError> {
        self.json(self.request(reqwest::Method::GET, "/healthz")).await
    }

    /// Uploads the file at `path` as an evidence blob (`PUT /v1/blobs/{blake3}`), signed by
    /// `key`: hashed first to name it, then streamed a chunk at a time.
    pub async fn put_blob(&self, key: &SignerKey, path: &Path) -> Result<BlobPutBody, ClientError> {
        let file_error = |source| ClientError::File { path: path.display().to_string(), source };
        let owned = path.to_owned();
        let (name, bytes) =
            tokio::task::spawn_blocking(move || BlobName::of_reader(&mut std::fs::File::open(&owned)?))
                .await
                .map_err(|e| file_error(std::io::Error::other(e)))?
                .map_err(file_error)?;
        let file = tokio::fs::File::open(path).await.map_err(file_error)?;
        let chunks = futures_util::stream::try_unfold(file, |mut file| async move {
            // Read into the spare capacity (`read_buf`): no zeroing of a fresh megabyte per chunk.
            let mut buffer = Vec::with_capacity(CHUNK_BYTES);
            let n = tokio::io::AsyncReadExt::read_buf(&mut file, &mut buffer).await?;
            Ok::<_, std::io::Error>((n > 0).then_some((buffer, file)))
        });
        let req = self
            .request(reqwest::Method::PUT, &format!("/v1/blobs/{name}"))
            .timeout(BLOB_TIMEOUT)
            .header(signed::SIGNATURE_HEADER, signed::header_value(key, &name))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, bytes)
            .body(reqwest::Body::wrap_stream(chunks));
        self.json(req).await
    }

    /// Uploads the files at `paths` as [`Client::put_blob`] does, up to
    /// [`crate::blobs::PUTS_IN_FLIGHT`] at once; the results come in the order of `paths`.
    pub fn put_blobs<'a>(
        &'a self,
        key: &'a SignerKey,
        paths: &'a [PathBuf],
    ) -> impl futures_util::Stream<Item = Result<BlobPutBody, ClientError>> + 'a {
        use futures_util::StreamExt;
        futures_util::stream::iter(paths.iter().map(|p| self.put_blob(key, p)))
            .buffered(crate::blobs::PUTS_IN_FLIGHT)
    }

    /// Asks the server to record `evidence.synced` for the `evidence.captured` with event
    /// digest `evidence` (hex), signed by `key` (`POST /v1/evidence/{digest}/sync`).
    pub async fn sync_evidence(
        &self,
        key: &SignerKey,
        evidence: &str,
    ) -> Result<EvidenceSyncBody, ClientError> {
        let req = self
            .request(reqwest::Method::POST, &format!("/v1/evidence/{evidence}/sync"))
            .header(signed::SIGNATURE_HEADER, signed::sync_header_value(key, evidence));
        self.json(req).await
    }

    /// Asks the server to collect the blobs no event cites that were stored more than
    /// `older_than_s` seconds ago (`POST /v1/blobs/gc`), signed by `key` (an admin's).
    pub async fn gc_blobs(
        &self,
        key: &SignerKey,
        older_than_s: u64,
        dry_run: bool,
    ) -> Result<crate::http::wire::BlobGcBody, ClientError> {
        let at_s = crate::clock::now_ns() / 1_000_000_000;
        let request = crate::http::wire::BlobGcRequest { older_than_s, dry_run, at_s };
        let body = serde_json::to_vec(&request).expect("a request serializes");
        let req = self
            .request(reqwest::Method::POST, "/v1/blobs/gc")
            .timeout(BLOB_TIMEOUT)
            .header(signed::SIGNATURE_HEADER, signed::gc_header_value(key, &body))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        self.json(req).await
    }

    /// The size of the blob `name`, if the server stores it (`HEAD /v1/blobs/{blake3}`).
    pub async fn blob_size(&self, name: &BlobName) -> Result<Option<u64>, ClientError> {
        match self.send(self.request(reqwest::Method::HEAD, &format!("/v1/blobs/{name}"))).await {
            // The header itself: reqwest's `content_length()` is the body's, which a HEAD lacks.
            Ok(response) => Ok(response
                .headers()
                .get(reqwest::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok())),
            Err(ClientError::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The download of the blob `name` (`GET /v1/blobs/{blake3}`), its body not yet read;
    /// `None` when the server does not store it.
    pub async fn get_blob(&self, name: &BlobName) -> Result<Option<reqwest::Response>, ClientError> {
        let req = self.request(reqwest::Method::GET, &format!("/v1/blobs/{name}")).timeout(BLOB_TIMEOUT);
        match self.send(req).await {
            Ok(response) => Ok(Some(response)),
            Err(ClientError::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Downloads the blob `name` whole and says whether its bytes hash to its name. A download
    /// the server ends early (it does so when the stored bytes no longer hash to the name) is
    /// [`BlobState::Corrupt`] with no name found.
    pub async fn check_blob(&self, name: &BlobName) -> Result<BlobState, ClientError> {
        let Some(mut response) = self.get_blob(name).await? else { return Ok(BlobState::Missing) };
        let mut check = Check::default();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => check.update(&chunk),
                Ok(None) => return Ok(check.finish(name)),
                Err(_) => return Ok(check.cut_short()),
            }
        }
    }
}
