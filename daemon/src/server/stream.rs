//! The streaming calls (audit export, audit watch, request watch): store reads
//! run on the blocking pool in batches; live entries come from the daemon's
//! broadcast of committed entries.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Response, Status};

use breakglass_proto::pb;

use super::grpc::{BreakGlassService, ResultStream};
use super::status::to_status;
use super::view::view;
use crate::error::Error;
use crate::ops::Daemon;
use crate::store::audit::AuditEntry;

/// Audit entries read per store transaction when streaming.
const AUDIT_BATCH: usize = 512;

/// An entry as the wire carries it; an entry that cannot be encoded is an
/// error for the stream, never an empty record.
fn record(e: &AuditEntry) -> Result<pb::AuditRecord, Status> {
    serde_json::to_string(e)
        .map(|json| pb::AuditRecord {
            seq: e.seq,
            json,
            trailer: None,
        })
        .map_err(|why| {
            to_status(&Error::Internal(format!(
                "audit entry {} cannot be encoded: {why}",
                e.seq
            )))
        })
}

/// Sends entries `from..=to` (or to the end if `to` is None) from the store; returns the last seq sent.
async fn backfill(
    d: &Arc<Daemon>,
    tx: &mpsc::Sender<Result<pb::AuditRecord, Status>>,
    mut from: u64,
    to: Option<u64>,
) -> Option<u64> {
    let mut last = from.saturating_sub(1);
    loop {
        let dd = d.clone();
        let batch = tokio::task::spawn_blocking(move || dd.store().audit(from, AUDIT_BATCH)).await;
        let batch = match batch {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                let _ = tx.send(Err(to_status(&e))).await;
                return None;
            }
            Err(e) => {
                let _ = tx
                    .send(Err(to_status(&Error::Internal(e.to_string()))))
                    .await;
                return None;
            }
        };
        if batch.is_empty() {
            return Some(last);
        }
        for e in &batch {
            if to.is_some_and(|t| e.seq > t) {
                return Some(last);
            }
            let sent = record(e);
            let failed = sent.is_err();
            if tx.send(sent).await.is_err() || failed {
                return None;
            }
            last = e.seq;
        }
        from = last + 1;
    }
}

/// How a live stream ends when the daemon stops: the client sees why.
fn stopping_status() -> Status {
    Status::unavailable("breakglassd is shutting down; reconnect when it is back")
}

impl BreakGlassService {
    /// `AuditExport`: entries from `since` up to the head when the call came.
    pub(super) async fn export_stream(
        &self,
        since: u64,
    ) -> Result<Response<ResultStream<pb::AuditRecord>>, Status> {
        let since = since.max(1);
        let d = self.daemon.clone();
        let head = self.run(|d| d.store().audit_head()).await?;
        let trailer = self.run(move |d| d.export_trailer(head)).await?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            // The signed trailer ends a complete export, and only a complete one.
            if backfill(&d, &tx, since, Some(head)).await.is_some() {
                let _ = tx
                    .send(Ok(pb::AuditRecord {
                        seq: 0,
                        json: String::new(),
                        trailer: Some(trailer),
                    }))
                    .await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    /// `WatchAudit`: entries from `since` (0: only new ones), then live.
    pub(super) async fn watch_audit_stream(
        &self,
        since: u64,
    ) -> Result<Response<ResultStream<pb::AuditRecord>>, Status> {
        let d = self.daemon.clone();
        // Subscribe before reading the head, so nothing committed in between is missed.
        let mut live = d.subscribe();
        let mut stopping = d.stopping();
        let head = self.run(|d| d.store().audit_head()).await?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            let mut last = if since == 0 {
                head
            } else {
                match backfill(&d, &tx, since, Some(head)).await {
                    // The last entry sent, or `since - 1` if there was none yet.
                    Some(l) => l,
                    None => return,
                }
            };
            loop {
                let got = tokio::select! {
                    got = live.recv() => got,
                    () = async { let _ = stopping.wait_for(|s| *s).await; } => {
                        let _ = tx.send(Err(stopping_status())).await;
                        return;
                    }
                };
                match got {
                    Ok(e) => {
                        if e.seq > last {
                            let sent = record(&e);
                            let failed = sent.is_err();
                            if tx.send(sent).await.is_err() || failed {
                                return;
                            }
                            last = e.seq;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        match backfill(&d, &tx, last + 1, None).await {
                            Some(l) => last = l,
                            None => return,
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    /// `WatchRequest`: the request's view now and after every change, until terminal.
    pub(super) async fn watch_request_stream(
        &self,
        id: String,
    ) -> Result<Response<ResultStream<pb::RequestView>>, Status> {
        let d = self.daemon.clone();
        let mut live = d.subscribe();
        let mut stopping = d.stopping();
        let first = {
            let id = id.clone();
            self.run(move |d| d.get(&id)).await?
        };
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            let mut current = first;
            loop {
                if tx.send(Ok(view(&d, &current))).await.is_err() || current.state.is_terminal() {
                    return;
                }
                // Wait for an entry about this request (or a lag, after which we re-read).
                loop {
                    let got = tokio::select! {
                        got = live.recv() => got,
                        () = async { let _ = stopping.wait_for(|s| *s).await; } => {
                            let _ = tx.send(Err(stopping_status())).await;
                            return;
                        }
                    };
                    match got {
                        Ok(e) if e.request_id.as_deref() == Some(id.as_str()) => break,
                        Ok(_) => continue,
                        Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
                let (dd, idd) = (d.clone(), id.clone());
                match tokio::task::spawn_blocking(move || dd.get(&idd)).await {
                    Ok(Ok(r)) => current = r,
                    Ok(Err(e)) => {
                        let _ = tx.send(Err(to_status(&e))).await;
                        return;
                    }
                    Err(e) => {
                        let _ = tx
                            .send(Err(to_status(&Error::Internal(format!(
                                "worker failed: {e}"
                            )))))
                            .await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
