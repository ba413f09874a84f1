//! A FHIR search's parameters, read strictly: `patient` (or `subject`),
//! `_id`, `_lastUpdated` with its prefixes, `_count` and `_offset`. A
//! parameter the facade does not support is refused rather than ignored
//! (FHIR lets a server ignore one, but a filter dropped in silence widens
//! what a providers' system believes it asked for).

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use uuid::Uuid;

/// Entries on a page by default, and at most (`_count`).
pub const PAGE_DEFAULT: usize = 50;
pub const PAGE_MAX: usize = 200;

/// The most matches a search gathers before paging; a search that finds
/// more is refused as too costly, to be narrowed with `_lastUpdated`.
pub const MATCHES_MAX: usize = 10_000;

/// Most `_lastUpdated` parameters in one search.
const DATES_MAX: usize = 4;

/// A search, as asked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Search {
    /// The patient the resources are about (`patient` or `subject`).
    pub patient: Option<Uuid>,
    /// `_id`: the one resource wanted.
    pub id: Option<String>,
    /// Every `_lastUpdated` condition (all must hold).
    pub last_updated: Vec<DateCondition>,
    /// Page size.
    pub count: usize,
    /// Matches skipped before the page.
    pub offset: usize,
    /// `_snapshot`: the time of the search's first page, which its paging
    /// links carry; matches changed after it are left to a new search.
    pub snapshot: Option<DateTime<Utc>>,
}

/// One `_lastUpdated` condition: a prefix and the time span its value names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DateCondition {
    pub prefix: Prefix,
    /// The span the value names: a year, month, day, or second.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// FHIR's comparison prefixes for dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
}

impl DateCondition {
    /// Whether a resource last updated at `at` meets the condition.
    pub fn holds(&self, at: DateTime<Utc>) -> bool {
        let within = self.start <= at && at < self.end;
        match self.prefix {
            Prefix::Eq => within,
            Prefix::Ne => !within,
            Prefix::Gt => at >= self.end,
            Prefix::Lt => at < self.start,
            Prefix::Ge => at >= self.start,
            Prefix::Le => at < self.end,
        }
    }
}

impl Search {
    /// Whether a resource last updated at `at` meets every `_lastUpdated`.
    pub fn updated_within(&self, at: DateTime<Utc>) -> bool {
        self.last_updated.iter().all(|c| c.holds(at))
    }

    /// Whether a resource last updated at `at` (if known) is a match: every
    /// `_lastUpdated` holds and it is not newer than the snapshot. One of
    /// unknown time matches no `_lastUpdated` condition.
    pub fn keeps(&self, at: Option<DateTime<Utc>>) -> bool {
        match at {
            Some(at) => self.updated_within(at) && self.snapshot.is_none_or(|s| at <= s),
            None => self.last_updated.is_empty(),
        }
    }
}

/// Reads a search's parameters; an error says what is wrong, for the client.
pub fn parse(params: &[(String, String)]) -> Result<Search, String> {
    let mut search = Search {
        count: PAGE_DEFAULT,
        ..Search::default()
    };
    for (name, value) in params {
        match name.as_str() {
            "patient" | "subject" => {
                let id = value.strip_prefix("Patient/").unwrap_or(value);
                let patient = Uuid::parse_str(id)
                    .map_err(|_| format!("`{name}` is not a patient of this service: {value}"))?;
                if search.patient.is_some_and(|p| p != patient) {
                    return Err("two different patients were asked for".into());
                }
                search.patient = Some(patient);
            }
            "_id" => {
                if search.id.replace(value.clone()).is_some() {
                    return Err("`_id` is given once".into());
                }
            }
            "_snapshot" => {
                let at = DateTime::parse_from_rfc3339(value)
                    .map_err(|_| "`_snapshot` is the time a paging link carries".to_string())?;
                if search.snapshot.replace(at.with_timezone(&Utc)).is_some() {
                    return Err("`_snapshot` is given once".into());
                }
            }
            "_lastUpdated" => {
                if search.last_updated.len() == DATES_MAX {
                    return Err(format!("at most {DATES_MAX} `_lastUpdated` conditions"));
                }
                search.last_updated.push(date_condition(value)?);
            }
            "_count" => {
                search.count = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=PAGE_MAX).contains(n))
                    .ok_or_else(|| format!("`_count` is a number from 1 to {PAGE_MAX}"))?
            }
            "_offset" => {
                search.offset = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n < MATCHES_MAX)
                    .ok_or_else(|| format!("`_offset` is a number below {MATCHES_MAX}"))?
            }
            "_format" => {
                if !matches!(value.as_str(), "json" | "application/json" | "application/fhir+json") {
                    return Err("this server speaks FHIR in JSON only".into());
                }
            }
            other => {
                return Err(format!(
                    "search parameter `{other}` is not supported here: patient (or subject), _id, _lastUpdated, _count, _offset (and the _snapshot of paging links)"
                ))
            }
        }
    }
    Ok(search)
}

/// `ge2026-01-01`, `lt2026-03-04T10:00:00Z`, `2026-05` (eq): the prefix and
/// the span the value names (FHIR dates are ranges at their precision).
fn date_condition(value: &str) -> Result<DateCondition, String> {
    let bad = || {
        format!("`_lastUpdated` is a FHIR date or instant with an optional prefix (eq, ne, gt, lt, ge, le): {value}")
    };
    let (prefix, rest) = match value.get(..2) {
        Some("eq") => (Prefix::Eq, &value[2..]),
        Some("ne") => (Prefix::Ne, &value[2..]),
        Some("gt") => (Prefix::Gt, &value[2..]),
        Some("lt") => (Prefix::Lt, &value[2..]),
        Some("ge") => (Prefix::Ge, &value[2..]),
        Some("le") => (Prefix::Le, &value[2..]),
        _ => (Prefix::Eq, value),
    };
    let day = |y: i32, m: u32, d: u32| {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| Utc.from_utc_datetime(&t))
    };
    let (start, end) = match rest.len() {
        4 => {
            let y: i32 = rest.parse().map_err(|_| bad())?;
            (
                day(y, 1, 1).ok_or_else(bad)?,
                day(y + 1, 1, 1).ok_or_else(bad)?,
            )
        }
        7 => {
            let start =
                NaiveDate::parse_from_str(&format!("{rest}-01"), "%Y-%m-%d").map_err(|_| bad())?;
            let (y, m) = (start.year(), start.month());
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            (
                day(y, m, 1).ok_or_else(bad)?,
                day(ny, nm, 1).ok_or_else(bad)?,
            )
        }
        10 => {
            let d = NaiveDate::parse_from_str(rest, "%Y-%m-%d").map_err(|_| bad())?;
            let start = day(d.year(), d.month(), d.day()).ok_or_else(bad)?;
            (start, start + Duration::days(1))
        }
        _ => {
            let at = DateTime::parse_from_rfc3339(rest)
                .map_err(|_| bad())?
                .with_timezone(&Utc);
            // An instant names its whole second (or finer, as written).
            let end = if at.timestamp_subsec_nanos() == 0 {
                at + Duration::seconds(1)
            } else {
                at + Duration::milliseconds(1)
            };
            (at, end)
        }
    };
    Ok(DateCondition { prefix, start, end })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn patient_and_paging_are_read() {
        let p = Uuid::new_v4();
        let s = parse(&params(&[
            ("patient", &format!("Patient/{p}")),
            ("_count", "10"),
            ("_offset", "20"),
        ]))
        .unwrap();
        assert_eq!((s.patient, s.count, s.offset), (Some(p), 10, 20));
        let s = parse(&params(&[("subject", &p.to_string())])).unwrap();
        assert_eq!((s.patient, s.count, s.offset), (Some(p), PAGE_DEFAULT, 0));
    }

    #[test]
    fn what_is_not_supported_is_refused_not_ignored() {
        for bad in [
            vec![("patient", "Patient/not-a-uuid")],
            vec![("category", "x")],
            vec![("_count", "0")],
            vec![("_count", "201")],
            vec![("_offset", "-1")],
            vec![("_format", "xml")],
            vec![("_lastUpdated", "yesterday")],
            vec![("_lastUpdated", "gx2026-01-01")],
            vec![("_id", "a"), ("_id", "b")],
            vec![("_snapshot", "later")],
            vec![
                ("_snapshot", "2026-01-01T00:00:00Z"),
                ("_snapshot", "2026-01-02T00:00:00Z"),
            ],
            vec![
                ("patient", &Uuid::new_v4().to_string()),
                ("patient", &Uuid::new_v4().to_string()),
            ],
        ] {
            let list: Vec<(&str, &str)> = bad.iter().map(|(n, v)| (*n, *v)).collect();
            assert!(parse(&params(&list)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn last_updated_compares_as_a_span_at_its_precision() {
        let cases: &[(&str, &str, bool)] = &[
            ("2026-03-04", "2026-03-04T23:59:59Z", true),
            ("2026-03-04", "2026-03-05T00:00:00Z", false),
            ("eq2026-03", "2026-03-31T12:00:00Z", true),
            ("eq2026-12", "2027-01-01T00:00:00Z", false),
            ("2026", "2026-12-31T23:00:00Z", true),
            ("ne2026", "2025-12-31T23:00:00Z", true),
            ("gt2026-03-04", "2026-03-04T12:00:00Z", false),
            ("gt2026-03-04", "2026-03-05T00:00:00Z", true),
            ("ge2026-03-04", "2026-03-04T00:00:00Z", true),
            ("ge2026-03-04", "2026-03-03T23:59:59Z", false),
            ("lt2026-03-04", "2026-03-03T23:59:59Z", true),
            ("lt2026-03-04", "2026-03-04T00:00:00Z", false),
            ("le2026-03-04", "2026-03-04T23:00:00Z", true),
            ("le2026-03-04T10:00:00+02:00", "2026-03-04T08:00:00Z", true),
            ("le2026-03-04T10:00:00+02:00", "2026-03-04T08:00:01Z", false),
            ("gt2026-03-04T08:00:00Z", "2026-03-04T08:00:00.5Z", false),
            ("gt2026-03-04T08:00:00Z", "2026-03-04T08:00:01Z", true),
        ];
        for (value, when, holds) in cases {
            let s = parse(&params(&[("_lastUpdated", value)])).unwrap();
            assert_eq!(s.updated_within(at(when)), *holds, "{value} at {when}");
        }
        let both = parse(&params(&[
            ("_lastUpdated", "ge2026-01-01"),
            ("_lastUpdated", "lt2026-02-01"),
        ]))
        .unwrap();
        assert!(both.updated_within(at("2026-01-15T00:00:00Z")));
        assert!(!both.updated_within(at("2026-02-15T00:00:00Z")));
        // A snapshot leaves out what changed after it; an unknown time
        // matches no condition.
        let paged = parse(&params(&[("_snapshot", "2026-01-10T00:00:00Z")])).unwrap();
        assert!(paged.keeps(Some(at("2026-01-10T00:00:00Z"))));
        assert!(!paged.keeps(Some(at("2026-01-10T00:00:01Z"))));
        assert!(paged.keeps(None) && !both.keeps(None));
        let five = vec![("_lastUpdated", "ge2026"); 5];
        assert!(parse(&params(&five)).is_err());
    }
}
