//! `berth logs`: a container's log, streamed to stdout as it arrives.

use std::io::Write;

use super::{CliError, LogsArgs, namespace_or_default};
use crate::client::{Client, LogOptions};

/// Parses a Go-style duration (`10s`, `5m`, `1h30m`, `500ms`) into whole seconds, rounded
/// up as kubectl does for `--since`.
pub fn parse_duration_secs(s: &str) -> Result<u64, CliError> {
    let bad = || {
        CliError::Usage(format!(
            "invalid duration \"{s}\": use a number with a unit, e.g. 30s, 5m, 1h30m"
        ))
    };
    let mut nanos: f64 = 0.0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        nanos += n * scale;
        rest = &rest[unit_len..];
    }
    Ok((nanos / 1e9).ceil() as u64)
}

pub async fn logs(client: &Client, args: LogsArgs) -> Result<(), CliError> {
    let namespace = namespace_or_default(&args.namespace);
    let pod = match args.pod.split_once('/') {
        Some(("pod" | "pods" | "po", name)) => name.to_string(),
        Some((kind, _)) => {
            return Err(CliError::Usage(format!(
                "berth logs takes a pod (NAME or pod/NAME), not a {kind}"
            )));
        }
        None => args.pod.clone(),
    };
    if args.since.is_some() && args.since_time.is_some() {
        return Err(CliError::Usage(
            "only one of --since and --since-time may be used".into(),
        ));
    }
    let tail_lines = match args.tail {
        n if n < 0 => None,
        n => Some(n as u64),
    };
    let options = LogOptions {
        container: args.container.clone(),
        follow: args.follow,
        previous: args.previous,
        tail_lines,
        since_seconds: args.since.as_deref().map(parse_duration_secs).transpose()?,
        since_time: args.since_time.clone(),
        timestamps: args.timestamps,
        limit_bytes: args.limit_bytes,
    };
    let mut stream = client.logs(&namespace, &pod, &options).await?;
    let stdout = std::io::stdout();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let mut out = stdout.lock();
        // A closed stdout (`berth logs … | head`) ends the command quietly.
        if out.write_all(&chunk).and_then(|()| out.flush()).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_secs("10s").expect("s"), 10);
        assert_eq!(parse_duration_secs("5m").expect("m"), 300);
        assert_eq!(parse_duration_secs("1h30m").expect("hm"), 5400);
        assert_eq!(parse_duration_secs("500ms").expect("ms"), 1);
        assert_eq!(parse_duration_secs("1.5s").expect("frac"), 2);
        for bad in ["", "10", "s", "10x", "-5s", "1h 2m"] {
            assert!(parse_duration_secs(bad).is_err(), "{bad}");
        }
    }
}
