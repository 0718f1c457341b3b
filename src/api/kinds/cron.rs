//! Cron schedules as Kubernetes accepts them (robfig/cron's standard parser): five fields
//! (minute hour day-of-month month day-of-week) with `*`, `?`, ranges, steps, lists and
//! month/day names, or a descriptor (`@hourly`, `@every 90m`, …). Only validation lives
//! here; the CronJob controller computes run times.

/// One field's bounds and names.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [(&'static str, u32)],
}

const MONTH_NAMES: &[(&str, u32)] = &[
    ("jan", 1),
    ("feb", 2),
    ("mar", 3),
    ("apr", 4),
    ("may", 5),
    ("jun", 6),
    ("jul", 7),
    ("aug", 8),
    ("sep", 9),
    ("oct", 10),
    ("nov", 11),
    ("dec", 12),
];
const DAY_NAMES: &[(&str, u32)] = &[
    ("sun", 0),
    ("mon", 1),
    ("tue", 2),
    ("wed", 3),
    ("thu", 4),
    ("fri", 5),
    ("sat", 6),
];

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
    },
    Field {
        name: "day of month",
        min: 1,
        max: 31,
        names: &[],
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: MONTH_NAMES,
    },
    Field {
        name: "day of week",
        min: 0,
        max: 6,
        names: DAY_NAMES,
    },
];

const DESCRIPTORS: &[&str] = &[
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

/// Checks a schedule; the error says what is wrong in it.
pub fn validate_schedule(schedule: &str) -> Result<(), String> {
    let mut spec = schedule.trim();
    // A leading TZ=/CRON_TZ= parses (and is refused separately with a clearer message).
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        spec = match spec.split_once(char::is_whitespace) {
            Some((_, rest)) => rest.trim_start(),
            None => "",
        };
    }
    if spec.is_empty() {
        return Err("empty spec string".to_string());
    }
    if let Some(descriptor) = spec.strip_prefix('@') {
        if DESCRIPTORS.contains(&spec) {
            return Ok(());
        }
        if let Some(duration) = descriptor.strip_prefix("every ") {
            return validate_go_duration(duration.trim())
                .map_err(|e| format!("failed to parse duration {spec}: {e}"));
        }
        return Err(format!("unrecognized descriptor: {spec}"));
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != FIELDS.len() {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    for (text, field) in fields.iter().zip(&FIELDS) {
        for part in text.split(',') {
            validate_range(part, field).map_err(|e| format!("{} field: {e}", field.name))?;
        }
    }
    Ok(())
}

/// One list element: `*`, `?`, `N`, `N-M`, any of them with `/step`.
fn validate_range(expr: &str, field: &Field) -> Result<(), String> {
    let (range, step) = match expr.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (expr, None),
    };
    if step.is_some_and(|s| s.contains('/')) {
        return Err(format!("too many slashes: {expr}"));
    }
    let (start, end) = if range == "*" || range == "?" {
        (field.min, field.max)
    } else {
        let mut bounds = range.split('-');
        let low = bounds.next().unwrap_or_default();
        let start = parse_value(low, field)?;
        let end = match (bounds.next(), bounds.next()) {
            (None, _) => {
                // `N/step` means from N to the field's end.
                if step.is_some() { field.max } else { start }
            }
            (Some(high), None) => parse_value(high, field)?,
            (Some(_), Some(_)) => return Err(format!("too many hyphens: {expr}")),
        };
        (start, end)
    };
    if let Some(step) = step {
        let step = parse_number(step)?;
        if step == 0 {
            return Err(format!("step of range should be a positive number: {expr}"));
        }
    }
    if start < field.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            field.min
        ));
    }
    if end > field.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            field.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    Ok(())
}

fn parse_value(text: &str, field: &Field) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some((_, v)) = field.names.iter().find(|(n, _)| *n == lower) {
        return Ok(*v);
    }
    parse_number(text)
}

fn parse_number(text: &str) -> Result<u32, String> {
    if let Some(rest) = text.strip_prefix('-')
        && !rest.is_empty()
    {
        return Err(format!("negative number ({text}) not allowed"));
    }
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("failed to parse int from {text}"));
    }
    text.parse()
        .map_err(|_| format!("failed to parse int from {text}"))
}

/// A Go `time.ParseDuration` string: `90m`, `1h30m`, `1.5h`, `0`.
fn validate_go_duration(text: &str) -> Result<(), String> {
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    if body == "0" {
        return Ok(());
    }
    if body.is_empty() {
        return Err(format!("invalid duration {text:?}"));
    }
    let mut rest = body;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(num_len);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(format!("invalid duration {text:?}"));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(format!("missing unit in duration {text:?}"));
        }
        if !["ns", "us", "µs", "μs", "ms", "s", "m", "h"].contains(&unit) {
            return Err(format!("unknown unit {unit:?} in duration {text:?}"));
        }
        rest = next;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_kubernetes_accepts() {
        for ok in [
            "*/5 * * * *",
            "0 0 * * *",
            "0 9-17 * * MON-FRI",
            "15,45 */2 1,15 jan-jun sun",
            "0 0 ? * 0",
            "5/15 * * * *",
            "@hourly",
            "@midnight",
            "@annually",
            "@every 1h30m",
            "@every 1.5h",
            "TZ=UTC 0 * * * *",
        ] {
            assert!(
                validate_schedule(ok).is_ok(),
                "{ok}: {:?}",
                validate_schedule(ok)
            );
        }
    }

    #[test]
    fn refuses_nonsense_with_a_reason() {
        for (bad, why) in [
            ("", "empty spec"),
            ("* * * *", "expected exactly 5 fields, found 4"),
            ("* * * * * *", "expected exactly 5 fields, found 6"),
            ("60 * * * *", "end of range (60) above maximum (59)"),
            ("* * 0 * *", "beginning of range (0) below minimum (1)"),
            ("* * * * 7", "above maximum (6)"),
            ("5-1 * * * *", "beyond end of range"),
            ("*/0 * * * *", "step of range should be a positive number"),
            ("1-2-3 * * * *", "too many hyphens"),
            ("* * * foo *", "failed to parse int from foo"),
            ("@sometimes", "unrecognized descriptor"),
            ("@every 5x", "unknown unit"),
            ("@every h", "invalid duration"),
        ] {
            match validate_schedule(bad) {
                Ok(()) => panic!("{bad:?} accepted"),
                Err(e) => assert!(e.contains(why), "{bad:?}: {e}"),
            }
        }
    }
}
