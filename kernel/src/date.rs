//! Calendar dates as days since 1970-01-01 (proleptic Gregorian), with ISO parsing.
//!
//! Backtests only need whole days, weekdays and month boundaries, so a plain day
//! number is enough and keeps the kernel free of a date-time dependency.

use std::fmt;

/// A calendar date, stored as the number of days since 1970-01-01.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i32);

impl Date {
    /// The date with the given day number (days since 1970-01-01).
    pub const fn from_days(days: i32) -> Date {
        Date(days)
    }

    /// Days since 1970-01-01.
    pub const fn days(self) -> i32 {
        self.0
    }

    /// The date of year/month/day, or `None` if the day does not exist.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Date> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Date(days_from_civil(year, month, day)))
    }

    /// Parses `YYYY-MM-DD`, optionally followed by a valid time of day (`T` or a space,
    /// `HH:MM[:SS[.fraction]]`, then optionally `Z` or `±HH:MM`), as pandas and ISO 8601
    /// timestamps write it; the time is checked, then ignored. Anything else is refused.
    pub fn parse_iso(text: &str) -> Option<Date> {
        let text = text.trim();
        let (date_part, time) = match text.find(['T', ' ']) {
            Some(at) => (&text[..at], Some(&text[at + 1..])),
            None => (text, None),
        };
        if let Some(time) = time {
            if !valid_time_of_day(time) {
                return None;
            }
        }
        let mut parts = date_part.split('-');
        let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return None;
        }
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !(all_digits(y) && all_digits(m) && all_digits(d)) {
            return None;
        }
        Date::from_ymd(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
    }

    /// Year, month (1..=12) and day (1..=31).
    pub fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(self.0)
    }

    /// Day of the week, 0 = Monday .. 6 = Sunday.
    pub fn weekday(self) -> u32 {
        // 1970-01-01 was a Thursday (weekday 3).
        (self.0 + 3).rem_euclid(7) as u32
    }

    /// True for Monday..Friday.
    pub fn is_weekday(self) -> bool {
        self.weekday() < 5
    }

    /// The next calendar day.
    pub fn succ(self) -> Date {
        Date(self.0 + 1)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Number of days in `month` of `year`.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

// Howard Hinnant's civil calendar algorithms (public domain).
fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i32;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i32::from(month <= 2);
    (year, month, day)
}

/// `HH:MM[:SS[.fraction]][Z|±HH:MM]` with hours 00-23, minutes 00-59, seconds 00-60.
fn valid_time_of_day(text: &str) -> bool {
    let two_digits = |s: &str, max: u32| {
        s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u32>().is_ok_and(|v| v <= max)
    };
    let (clock, offset) = match text.find(['Z', '+', '-']) {
        Some(at) => (&text[..at], &text[at..]),
        None => (text, ""),
    };
    let offset_ok = match offset {
        "" | "Z" => true,
        _ => offset[1..].split_once(':').is_some_and(|(h, m)| two_digits(h, 23) && two_digits(m, 59)),
    };
    let (clock, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    if !fraction.bytes().all(|b| b.is_ascii_digit()) || (clock.len() != 8 && !fraction.is_empty()) {
        return false;
    }
    let fields: Vec<&str> = clock.split(':').collect();
    let clock_ok = match fields.as_slice() {
        [h, m] => two_digits(h, 23) && two_digits(m, 59),
        [h, m, sec] => two_digits(h, 23) && two_digits(m, 59) && two_digits(sec, 60),
        _ => false,
    };
    clock_ok && offset_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_day_of_four_centuries() {
        let start = Date::from_ymd(1900, 1, 1).unwrap().days();
        for days in start..start + 146_097 {
            let date = Date::from_days(days);
            let (y, m, d) = date.ymd();
            assert_eq!(Date::from_ymd(y, m, d), Some(date));
            assert_eq!(Date::parse_iso(&date.to_string()), Some(date));
        }
    }

    #[test]
    fn known_dates_and_weekdays() {
        assert_eq!(Date::from_ymd(1970, 1, 1).unwrap().days(), 0);
        let d = Date::parse_iso("2004-08-19").unwrap();
        assert_eq!(d.ymd(), (2004, 8, 19));
        assert_eq!(d.weekday(), 3); // a Thursday
        assert!(Date::parse_iso("2024-02-29").is_some());
        assert_eq!(Date::parse_iso("2024-06-01 14:30:00").unwrap().to_string(), "2024-06-01");
        assert!(!Date::parse_iso("2024-06-01").unwrap().is_weekday()); // Saturday
    }

    #[test]
    fn rejects_malformed_dates() {
        for bad in ["", "2023-02-29", "2023-13-01", "2023-1-01", "20230101", "2023-01-0x", "abcd-01-01"] {
            assert_eq!(Date::parse_iso(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_time_of_day_must_be_a_real_one() {
        let day = Date::from_ymd(2020, 1, 2);
        for good in [
            "2020-01-02",
            "2020-01-02 00:00:00",
            "2020-01-02T00:00",
            "2020-01-02T16:00:00Z",
            "2020-01-02T09:30:00.123-05:00",
            "2020-01-02 23:59:60",
        ] {
            assert_eq!(Date::parse_iso(good), day, "{good}");
        }
        for bad in [
            "2020-01-02Tlol",
            "2020-01-03T99:99:99Z",
            "2020-01-02T",
            "2020-01-02T10",
            "2020-01-02T10:00:00+5",
            "2020-01-02T10:00.5",
            "2020-01-02 00:00:00 extra",
        ] {
            assert_eq!(Date::parse_iso(bad), None, "{bad}");
        }
    }
}
