//! A step's output, followed through the Pod log API while it runs, into the event sink; the
//! entrypoint's report at its end is taken out of the stream.

use futures::AsyncReadExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use slipway_engine::output::{LineSplitter, Piece};
use slipway_engine::{EventSink, Stream};

use crate::frame::{Line, Reader, Report};

/// Follows container `container` of Pod `pod` to its end, sending its lines as step `step`'s
/// output; returns the step's report, if it printed one. An error opening the stream is
/// returned so the caller may try again; one mid-way ends the stream (the state says why).
pub(crate) async fn follow(
    pods: &Api<Pod>,
    pod: &str,
    container: &str,
    step: usize,
    events: &EventSink,
) -> Result<Option<Report>, kube::Error> {
    let params = LogParams {
        container: Some(container.to_string()),
        follow: true,
        ..LogParams::default()
    };
    let mut stream = pods.log_stream(pod, &params).await?;
    let mut splitter = LineSplitter::default();
    let mut reader = Reader::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for piece in splitter.push(&buf[..n]) {
            forward(&mut reader, piece, step, events).await;
        }
    }
    if let Some(piece) = splitter.finish() {
        forward(&mut reader, piece, step, events).await;
    }
    Ok(reader.take())
}

async fn forward(reader: &mut Reader, piece: Piece, step: usize, events: &EventSink) {
    // The log API merges stdout and stderr; everything counts as stdout.
    if piece.continued {
        events.log(step, Stream::Stdout, piece).await;
        return;
    }
    if let Line::Output(line) = reader.line(&piece.line) {
        events
            .log(
                step,
                Stream::Stdout,
                Piece {
                    line,
                    continued: false,
                },
            )
            .await;
    }
}
