//! A step's output, followed through the Pod log API while it runs, into the event sink; the
//! entrypoint's report at its end is taken out of the stream. A stream that breaks before the
//! container ends is opened again from the last line's time (`sinceTime`, whole seconds), and
//! the lines already forwarded are recognised by their timestamps and left out.

use futures::AsyncReadExt as _;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use slipway_engine::output::{LineSplitter, Piece};
use slipway_engine::{EventSink, Stream};

use crate::frame::{Line, Reader, Report};

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The server closed it: the container ended, or the connection was cut cleanly.
    Closed,
    /// Reading failed mid-way.
    Broken,
}

/// Where a line stands against what an earlier stream already forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Forwarded whole before: left out.
    Before,
    /// The line the earlier stream was forwarding when it broke: its first bytes are out.
    Partly(usize),
    /// New.
    New,
}

/// One container's log as followed so far, across streams.
#[derive(Debug, Default)]
pub(crate) struct Follower {
    reader: Reader,
    /// The timestamp of the last line begun, and how many lines begun carried it.
    last: Option<(Timestamp, usize)>,
    /// Bytes of that line's text forwarded.
    sent: usize,
}

/// What one stream is doing with the line at hand.
#[derive(Debug, Default)]
struct Cursor {
    /// Lines of this stream that carried the earlier stream's last timestamp.
    equal: usize,
    /// Bytes of the line at hand still to leave out (`usize::MAX`: all of it).
    skip: usize,
}

impl Follower {
    /// Follows the container's log from where the last stream stopped, until this stream ends.
    pub(crate) async fn stream(
        &mut self,
        pods: &Api<Pod>,
        pod: &str,
        container: &str,
        step: usize,
        events: &EventSink,
    ) -> Result<End, kube::Error> {
        let params = LogParams {
            container: Some(container.to_string()),
            follow: true,
            timestamps: true,
            // Whole seconds, rounded down: the API takes no finer time, and kube would round.
            since_time: self
                .last
                .and_then(|(t, _)| Timestamp::from_second(t.as_second()).ok()),
            ..LogParams::default()
        };
        let resumed_from = self.last;
        let mut stream = pods.log_stream(pod, &params).await?;
        let mut splitter = LineSplitter::default();
        let mut cursor = Cursor::default();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match stream.read(&mut buf).await {
                Ok(0) => break,
                // What is in the splitter is a line's start: the next stream sends it whole.
                Err(_) => return Ok(End::Broken),
                Ok(n) => n,
            };
            for piece in splitter.push(&buf[..n]) {
                self.piece(piece, resumed_from, &mut cursor, step, events)
                    .await;
            }
        }
        if let Some(piece) = splitter.finish() {
            self.piece(piece, resumed_from, &mut cursor, step, events)
                .await;
        }
        Ok(End::Closed)
    }

    /// The step's report, if it printed one.
    pub(crate) fn report(&mut self) -> Option<Report> {
        self.reader.take()
    }

    async fn piece(
        &mut self,
        piece: Piece,
        resumed_from: Option<(Timestamp, usize)>,
        cursor: &mut Cursor,
        step: usize,
        events: &EventSink,
    ) {
        let (text, mut continued) = if piece.continued {
            (piece.line, true)
        } else {
            let (at, text) = split_timestamp(&piece.line);
            let state = match (at, resumed_from) {
                (Some(at), Some(from)) => seen(at, from, &mut cursor.equal, self.sent),
                _ => Seen::New,
            };
            let continued = match state {
                Seen::Before => {
                    cursor.skip = usize::MAX;
                    return;
                }
                // The rest of the line the last stream broke in continues what was sent.
                Seen::Partly(n) => {
                    cursor.skip = n;
                    true
                }
                Seen::New => {
                    cursor.skip = 0;
                    self.begin(at);
                    false
                }
            };
            (text.to_string(), continued)
        };
        if cursor.skip == usize::MAX {
            return;
        }
        let text = if cursor.skip > 0 {
            let left = cursor.skip.min(text.len());
            cursor.skip -= left;
            let mut at = left;
            while !text.is_char_boundary(at) {
                at += 1;
            }
            continued = true;
            text[at..].to_string()
        } else {
            text
        };
        if text.is_empty() && continued {
            return;
        }
        self.sent += text.len();
        self.forward(
            Piece {
                line: text,
                continued,
            },
            step,
            events,
        )
        .await;
    }

    /// A new line starts at `at`.
    fn begin(&mut self, at: Option<Timestamp>) {
        self.sent = 0;
        if let Some(at) = at {
            self.last = match self.last {
                Some((t, n)) if t == at => Some((t, n + 1)),
                _ => Some((at, 1)),
            };
        }
    }

    async fn forward(&mut self, piece: Piece, step: usize, events: &EventSink) {
        // The log API merges stdout and stderr; everything counts as stdout.
        if piece.continued {
            events.log(step, Stream::Stdout, piece).await;
            return;
        }
        if let Line::Output(line) = self.reader.line(&piece.line) {
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
}

/// Where a line stamped `at` stands, for a stream resumed after `(from, count)`: lines before
/// that time were forwarded, and so were the first `count` lines stamped exactly `from` (the
/// last of them only for `sent` bytes). `equal` counts this stream's lines stamped `from`.
fn seen(at: Timestamp, (from, count): (Timestamp, usize), equal: &mut usize, sent: usize) -> Seen {
    if at < from {
        return Seen::Before;
    }
    if at > from {
        return Seen::New;
    }
    *equal += 1;
    match (*equal).cmp(&count) {
        std::cmp::Ordering::Less => Seen::Before,
        std::cmp::Ordering::Equal => Seen::Partly(sent),
        std::cmp::Ordering::Greater => Seen::New,
    }
}

/// A log line asked with `timestamps=true`: its RFC 3339 time and its text.
fn split_timestamp(line: &str) -> (Option<Timestamp>, &str) {
    match line.split_once(' ') {
        Some((t, rest)) => match t.parse::<Timestamp>() {
            Ok(at) => (Some(at), rest),
            Err(_) => (None, line),
        },
        // A line that was empty: the timestamp alone.
        None => match line.parse::<Timestamp>() {
            Ok(at) => (Some(at), ""),
            Err(_) => (None, line),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("a timestamp")
    }

    #[test]
    fn timestamps_are_split_off() {
        assert_eq!(
            split_timestamp("2026-12-02T02:09:00.5Z hello world"),
            (Some(t("2026-12-02T02:09:00.5Z")), "hello world")
        );
        assert_eq!(
            split_timestamp("2026-12-02T02:09:00Z"),
            (Some(t("2026-12-02T02:09:00Z")), "")
        );
        assert_eq!(split_timestamp("no time here"), (None, "no time here"));
    }

    #[tokio::test]
    async fn a_long_line_cut_by_a_break_continues_where_it_stopped() {
        let (sink, mut rx) = EventSink::channel("uid".into());
        let mut f = Follower::default();
        let piece = |line: &str, continued: bool| Piece {
            line: line.to_string(),
            continued,
        };
        // The first stream: a line, then a long line cut after two of its pieces.
        let mut cursor = Cursor::default();
        for (line, cont) in [
            ("2026-12-02T02:09:00.1Z one", false),
            ("2026-12-02T02:09:00.2Z aaaa", false),
            ("bbbb", true),
        ] {
            f.piece(piece(line, cont), None, &mut cursor, 0, &sink)
                .await;
        }
        // The resumed stream sends the second again, whole, then what came after.
        let from = f.last;
        let mut cursor = Cursor::default();
        for (line, cont) in [
            ("2026-12-02T02:09:00.1Z one", false),
            ("2026-12-02T02:09:00.2Z aaaa", false),
            ("bbbb", true),
            ("cccc", true),
            ("2026-12-02T02:09:01Z two", false),
        ] {
            f.piece(piece(line, cont), from, &mut cursor, 0, &sink)
                .await;
        }
        drop(sink);
        let mut got = Vec::new();
        while let Some((_, ev)) = rx.recv().await {
            if let slipway_engine::ExecEvent::Log {
                line, continued, ..
            } = ev
            {
                got.push((line, continued));
            }
        }
        let want = [
            ("one", false),
            ("aaaa", false),
            ("bbbb", true),
            ("cccc", true),
            ("two", false),
        ];
        let want: Vec<(String, bool)> = want.iter().map(|(l, c)| (l.to_string(), *c)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_resumed_stream_leaves_out_what_was_forwarded() {
        let from = (t("2026-12-02T02:09:00.5Z"), 2);
        let mut equal = 0;
        let mut at = |s: &str| seen(t(s), from, &mut equal, 3);
        // The second's earlier lines, then two with the same stamp, then a new one.
        assert_eq!(at("2026-12-02T02:09:00.1Z"), Seen::Before);
        assert_eq!(at("2026-12-02T02:09:00.5Z"), Seen::Before);
        assert_eq!(at("2026-12-02T02:09:00.5Z"), Seen::Partly(3));
        assert_eq!(at("2026-12-02T02:09:00.5Z"), Seen::New);
        assert_eq!(at("2026-12-02T02:09:01Z"), Seen::New);
    }
}
