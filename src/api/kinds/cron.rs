//! Cron schedules as Kubernetes accepts them (robfig/cron's standard parser): five fields
//! (minute hour day-of-month month day-of-week) with `*`, `?`, ranges, steps, lists and
//! month/day names, or a descriptor (`@hourly`, `@every 90m`, …).
//!
//! [`Schedule::parse`] is what admission checks; [`Schedule::next_after`] gives the CronJob
//! controller its run times. The rules are robfig/cron's, which Kubernetes uses:
//!
//! - When day of month and day of week are both restricted, a day matches either (cron's OR
//!   rule); when either is `*` or `?` (without a step above 1), both must match, which is
//!   the same as only the other one.
//! - Run times are whole minutes of wall-clock time in the schedule's zone: an instant is a
//!   run time when its local time matches every field. So a local time that a daylight
//!   saving change skips does not run that day, and one it repeats runs twice (once per
//!   offset), exactly as in Kubernetes.
//! - `@every <duration>` runs every whole number of seconds (at least one) after the
//!   previous run, independent of the zone.
//! - Like robfig/cron, a search gives up after five years (`0 0 30 2 *` never runs).

use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp, ToSpan};

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

/// The descriptors and the five fields each stands for.
const DESCRIPTORS: &[(&str, &str)] = &[
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// How far ahead a search for the next run looks, as robfig/cron.
const SEARCH_YEARS: i16 = 5;

/// A parsed cron schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule(Kind);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Fields(Fields),
    /// `@every`: a fixed delay in whole seconds.
    Every(i64),
}

/// One bit per allowed value of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fields {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    /// Day of month / day of week written as `*` or `?` (without a step above 1).
    dom_star: bool,
    dow_star: bool,
}

/// Checks a schedule; the error says what is wrong in it.
pub fn validate_schedule(schedule: &str) -> Result<(), String> {
    Schedule::parse(schedule).map(|_| ())
}

impl Schedule {
    /// Parses a schedule as Kubernetes does. A leading `TZ=`/`CRON_TZ=` is skipped here
    /// (admission refuses it separately with a clearer message).
    pub fn parse(schedule: &str) -> Result<Schedule, String> {
        let mut spec = schedule.trim();
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
            if let Some((_, fields)) = DESCRIPTORS.iter().find(|(d, _)| *d == spec) {
                return Self::parse_fields(fields);
            }
            if let Some(duration) = descriptor.strip_prefix("every ") {
                let nanos = parse_go_duration(duration.trim())
                    .map_err(|e| format!("failed to parse duration {spec}: {e}"))?;
                // robfig/cron: at least a second, in whole seconds.
                let secs = (nanos / 1_000_000_000).max(1);
                return Ok(Schedule(Kind::Every(
                    i64::try_from(secs).unwrap_or(i64::MAX),
                )));
            }
            return Err(format!("unrecognized descriptor: {spec}"));
        }
        Self::parse_fields(spec)
    }

    fn parse_fields(spec: &str) -> Result<Schedule, String> {
        let fields: Vec<&str> = spec.split_whitespace().collect();
        if fields.len() != FIELDS.len() {
            return Err(format!(
                "expected exactly 5 fields, found {}: [{}]",
                fields.len(),
                fields.join(" ")
            ));
        }
        let mut parsed = [(0u64, false); 5];
        for ((text, field), out) in fields.iter().zip(&FIELDS).zip(parsed.iter_mut()) {
            for part in text.split(',') {
                let (bits, star) =
                    parse_range(part, field).map_err(|e| format!("{} field: {e}", field.name))?;
                out.0 |= bits;
                out.1 |= star;
            }
        }
        let [minute, hour, dom, month, dow] = parsed;
        Ok(Schedule(Kind::Fields(Fields {
            minute: minute.0,
            hour: hour.0,
            dom: dom.0,
            month: month.0,
            dow: dow.0,
            dom_star: dom.1,
            dow_star: dow.1,
        })))
    }

    /// The first run time strictly after `after`, in zone `tz`; `None` when there is none
    /// within five years.
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        match &self.0 {
            Kind::Every(secs) => {
                let whole = Timestamp::from_second(after.as_second()).ok()?;
                whole.checked_add(SignedDuration::from_secs(*secs)).ok()
            }
            Kind::Fields(f) => f.next_after(after, tz),
        }
    }
}

impl Fields {
    fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        // Walk matching wall-clock minutes from a little before `after`'s local time: an
        // offset change moves local time by at most a few hours, so the earliest instant
        // after `after` comes from a wall-clock minute at most that far back, and none
        // comes from a wall-clock minute more than that far beyond the best found.
        let slack = SignedDuration::from_hours(3);
        let local = tz.to_datetime(after);
        let limit = local.year().saturating_add(SEARCH_YEARS);
        let mut from = truncate_minute(local.checked_sub(slack).ok()?)?;
        let mut best: Option<(Timestamp, DateTime)> = None;
        loop {
            let Some(candidate) = self.next_civil(from, limit) else {
                return best.map(|(b, _)| b);
            };
            if let Some((b, b_local)) = best
                && candidate > b_local.checked_add(slack).ok()?
            {
                return Some(b);
            }
            for instant in instants(tz, candidate) {
                if instant > after && best.is_none_or(|(b, _)| instant < b) {
                    best = Some((instant, candidate));
                }
            }
            from = candidate.checked_add(1.minute()).ok()?;
        }
    }

    /// The first wall-clock minute at or after `from` that matches, before year `limit`.
    fn next_civil(&self, from: DateTime, limit: i16) -> Option<DateTime> {
        let has = |bits: u64, v: i8| v >= 0 && bits & (1u64 << v) != 0;
        let (mut y, mut mo, mut d, mut h, mut mi) = (
            from.year(),
            from.month(),
            from.day(),
            from.hour(),
            from.minute(),
        );
        loop {
            if mi > 59 {
                mi = 0;
                h += 1;
            }
            if h > 23 {
                h = 0;
                d += 1;
            }
            let date = Date::new(y, mo, 1).ok()?;
            if d > date.days_in_month() {
                d = 1;
                mo += 1;
            }
            if mo > 12 {
                mo = 1;
                y += 1;
            }
            if y > limit {
                return None;
            }
            if !has(self.month, mo) {
                (mo, d, h, mi) = (mo + 1, 1, 0, 0);
                if mo > 12 {
                    (y, mo) = (y + 1, 1);
                }
                continue;
            }
            let Ok(date) = Date::new(y, mo, d) else {
                // Past the month's end: the normalisation above moves on.
                d = 32;
                continue;
            };
            if !self.day_matches(date) {
                (d, h, mi) = (d + 1, 0, 0);
                continue;
            }
            if !has(self.hour, h) {
                (h, mi) = (h + 1, 0);
                continue;
            }
            if !has(self.minute, mi) {
                mi += 1;
                continue;
            }
            return DateTime::new(y, mo, d, h, mi, 0, 0).ok();
        }
    }

    /// Cron's day rule: both fields must match when either is a star, else either may.
    fn day_matches(&self, date: Date) -> bool {
        let dom = self.dom & (1u64 << date.day()) != 0;
        let dow = self.dow & (1u64 << date.weekday().to_sunday_zero_offset()) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }
}

fn truncate_minute(dt: DateTime) -> Option<DateTime> {
    DateTime::new(
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        0,
        0,
    )
    .ok()
}

/// The instants whose local time in `tz` is `dt`: none in a gap, two in a fold.
fn instants(tz: &TimeZone, dt: DateTime) -> Vec<Timestamp> {
    let offsets = match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => vec![offset],
        AmbiguousOffset::Gap { .. } => vec![],
        AmbiguousOffset::Fold { before, after } => vec![before, after],
    };
    offsets
        .into_iter()
        .filter_map(|o| o.to_timestamp(dt).ok())
        .collect()
}

/// One list element: `*`, `?`, `N`, `N-M`, any of them with `/step`. Returns the bits and
/// whether it counts as a star (robfig/cron's `starBit`).
fn parse_range(expr: &str, field: &Field) -> Result<(u64, bool), String> {
    let (range, step) = match expr.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (expr, None),
    };
    if step.is_some_and(|s| s.contains('/')) {
        return Err(format!("too many slashes: {expr}"));
    }
    let star = range == "*" || range == "?";
    let (start, end) = if star {
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
    let step = match step {
        Some(step) => parse_number(step)?,
        None => 1,
    };
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
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
    let bits = (start..=end)
        .step_by(step as usize)
        .fold(0u64, |acc, v| acc | (1u64 << v));
    Ok((bits, star && step == 1))
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

/// A Go `time.ParseDuration` string (`90m`, `1h30m`, `1.5h`, `0`) in nanoseconds; a
/// negative duration is 0.
fn parse_go_duration(text: &str) -> Result<u128, String> {
    let negative = text.starts_with('-');
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    if body == "0" {
        return Ok(0);
    }
    if body.is_empty() {
        return Err(format!("invalid duration {text:?}"));
    }
    let mut total: f64 = 0.0;
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
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(format!("unknown unit {unit:?} in duration {text:?}")),
        };
        let value: f64 = number
            .parse()
            .map_err(|_| format!("invalid duration {text:?}"))?;
        total += value * scale;
        rest = next;
    }
    // Go's durations are int64 nanoseconds.
    if total > i64::MAX as f64 {
        return Err(format!("invalid duration {text:?}"));
    }
    Ok(if negative { 0 } else { total as u128 })
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
            ("1/2/3 * * * *", "too many slashes"),
            ("* * * foo *", "failed to parse int from foo"),
            ("-1 * * * *", "failed to parse int from"),
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

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).expect("zoneinfo (install tzdata)")
    }

    /// The next `n` run times after `from`, as RFC 3339 in UTC.
    fn runs(schedule: &str, from: &str, tz: &TimeZone, n: usize) -> Vec<String> {
        let s = Schedule::parse(schedule).expect("parses");
        let mut t = ts(from);
        let mut out = Vec::new();
        for _ in 0..n {
            match s.next_after(t, tz) {
                Some(next) => {
                    out.push(next.to_string());
                    t = next;
                }
                None => break,
            }
        }
        out
    }

    #[test]
    fn next_runs_in_utc() {
        let utc = TimeZone::UTC;
        assert_eq!(
            runs("*/1 * * * *", "2026-03-01T10:00:00Z", &utc, 2),
            ["2026-03-01T10:01:00Z", "2026-03-01T10:02:00Z"]
        );
        // Strictly after, and from inside a minute.
        assert_eq!(
            runs("* * * * *", "2026-03-01T10:00:30.5Z", &utc, 1),
            ["2026-03-01T10:01:00Z"]
        );
        assert_eq!(
            runs("15,45 9-10 * * *", "2026-03-01T09:20:00Z", &utc, 4),
            [
                "2026-03-01T09:45:00Z",
                "2026-03-01T10:15:00Z",
                "2026-03-01T10:45:00Z",
                "2026-03-02T09:15:00Z"
            ]
        );
        // Steps from a start, ranges with steps, names.
        assert_eq!(
            runs("5/20 * * * *", "2026-03-01T00:00:00Z", &utc, 3),
            [
                "2026-03-01T00:05:00Z",
                "2026-03-01T00:25:00Z",
                "2026-03-01T00:45:00Z"
            ]
        );
        assert_eq!(
            runs("0 12 * JAN-FEB/1 MON-FRI", "2026-02-27T13:00:00Z", &utc, 2),
            ["2027-01-01T12:00:00Z", "2027-01-04T12:00:00Z"]
        );
        // Month ends and leap days.
        assert_eq!(
            runs("0 0 31 * *", "2026-01-31T00:00:00Z", &utc, 2),
            ["2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z"]
        );
        assert_eq!(
            runs("0 0 29 2 *", "2026-01-01T00:00:00Z", &utc, 1),
            ["2028-02-29T00:00:00Z"]
        );
        // Never: searching gives up.
        assert!(runs("0 0 30 2 *", "2026-01-01T00:00:00Z", &utc, 1).is_empty());
    }

    #[test]
    fn descriptors_are_their_fields() {
        let utc = TimeZone::UTC;
        for (d, fields) in DESCRIPTORS {
            assert_eq!(Schedule::parse(d), Schedule::parse(fields), "{d}");
        }
        assert_eq!(
            runs("@yearly", "2026-06-01T00:00:00Z", &utc, 1),
            ["2027-01-01T00:00:00Z"]
        );
        assert_eq!(
            runs("@monthly", "2026-06-01T00:00:00Z", &utc, 1),
            ["2026-07-01T00:00:00Z"]
        );
        // 2026-06-01 is a Monday.
        assert_eq!(
            runs("@weekly", "2026-06-01T00:00:00Z", &utc, 1),
            ["2026-06-07T00:00:00Z"]
        );
        assert_eq!(
            runs("@daily", "2026-06-01T00:00:00Z", &utc, 1),
            ["2026-06-02T00:00:00Z"]
        );
        assert_eq!(
            runs("@midnight", "2026-06-01T23:59:59Z", &utc, 1),
            ["2026-06-02T00:00:00Z"]
        );
        assert_eq!(
            runs("@hourly", "2026-06-01T00:00:00Z", &utc, 1),
            ["2026-06-01T01:00:00Z"]
        );
        assert_eq!(
            runs("@every 90m", "2026-06-01T00:00:00.7Z", &utc, 2),
            ["2026-06-01T01:30:00Z", "2026-06-01T03:00:00Z"]
        );
        assert_eq!(
            runs("@every 10ms", "2026-06-01T00:00:00Z", &utc, 1),
            ["2026-06-01T00:00:01Z"]
        );
    }

    #[test]
    fn day_of_month_and_day_of_week_follow_the_cron_or_rule() {
        let utc = TimeZone::UTC;
        // Both restricted: the 13th or a Friday (2026-03-06 is a Friday).
        assert_eq!(
            runs("0 0 13 * FRI", "2026-03-01T00:00:00Z", &utc, 4),
            [
                "2026-03-06T00:00:00Z",
                "2026-03-13T00:00:00Z",
                "2026-03-20T00:00:00Z",
                "2026-03-27T00:00:00Z"
            ]
        );
        // 2026-03-13 is also a Friday; the 13th of April is a Monday.
        assert_eq!(
            runs("0 0 13 * FRI", "2026-04-10T00:00:00Z", &utc, 1),
            ["2026-04-13T00:00:00Z"]
        );
        // One is a star: only the other counts.
        assert_eq!(
            runs("0 0 * * FRI", "2026-03-01T00:00:00Z", &utc, 1),
            ["2026-03-06T00:00:00Z"]
        );
        assert_eq!(
            runs("0 0 13 * ?", "2026-03-01T00:00:00Z", &utc, 1),
            ["2026-03-13T00:00:00Z"]
        );
        // A stepped star is a restriction (robfig/cron): odd days or Sundays.
        assert_eq!(
            runs("0 0 */2 * SUN", "2026-03-01T12:00:00Z", &utc, 3),
            [
                "2026-03-03T00:00:00Z",
                "2026-03-05T00:00:00Z",
                "2026-03-07T00:00:00Z"
            ]
        );
        assert_eq!(
            runs("0 0 */2 * SUN", "2026-03-07T12:00:00Z", &utc, 2),
            ["2026-03-08T00:00:00Z", "2026-03-09T00:00:00Z"]
        );
    }

    #[test]
    fn time_zones_and_daylight_saving_time() {
        let berlin = zone("Europe/Berlin");
        // Winter: UTC+1.
        assert_eq!(
            runs("0 9 * * *", "2026-01-10T12:00:00Z", &berlin, 1),
            ["2026-01-11T08:00:00Z"]
        );
        // Spring forward on 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:30 does not exist
        // that day and is skipped, the day after it is 02:30 CEST.
        assert_eq!(
            runs("30 2 * * *", "2026-03-28T12:00:00Z", &berlin, 2),
            ["2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"]
        );
        // Every 30 minutes keeps going through the gap: 01:30 CET, then 03:00 CEST.
        assert_eq!(
            runs("*/30 * * * *", "2026-03-29T00:15:00Z", &berlin, 3),
            [
                "2026-03-29T00:30:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-29T01:30:00Z"
            ]
        );
        // Fall back on 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
        assert_eq!(
            runs("30 2 * * *", "2026-10-24T12:00:00Z", &berlin, 3),
            [
                "2026-10-25T00:30:00Z",
                "2026-10-25T01:30:00Z",
                "2026-10-26T01:30:00Z"
            ]
        );
        // Midnight in a zone ahead of UTC, and a zone behind it.
        assert_eq!(
            runs("@daily", "2026-07-01T12:00:00Z", &berlin, 1),
            ["2026-07-01T22:00:00Z"]
        );
        assert_eq!(
            runs(
                "0 0 * * *",
                "2026-07-01T12:00:00Z",
                &zone("America/New_York"),
                1
            ),
            ["2026-07-02T04:00:00Z"]
        );
        // A half-hour zone.
        assert_eq!(
            runs(
                "0 * * * *",
                "2026-07-01T12:00:00Z",
                &zone("Asia/Kolkata"),
                1
            ),
            ["2026-07-01T12:30:00Z"]
        );
    }
}
