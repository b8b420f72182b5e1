//! When a person may be let in: weekly windows such as `mon-fri 07:00-19:00`, in the door's
//! local time (the system's time zone, or `[device] time_zone`). Used by *decide*: a match
//! outside every window of the person is denied with reason `outside_schedule`. A person
//! without a schedule may come in at any time.

use jiff::Timestamp;
use jiff::civil::Weekday;
use jiff::tz::TimeZone;

/// One weekly window: days (a set of weekdays) and a time span within each day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Bit `n` set: weekday `n` (Monday = 0) is in.
    days: u8,
    /// Start, minutes after midnight (inclusive).
    from: u16,
    /// End, minutes after midnight (exclusive); 24:00 allowed.
    to: u16,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day(s: &str) -> Result<u8, String> {
    DAYS.iter()
        .position(|d| d.eq_ignore_ascii_case(s))
        .map(|i| i as u8)
        .ok_or_else(|| format!("{s:?} is not a day (mon, tue, wed, thu, fri, sat, sun)"))
}

fn minutes(s: &str) -> Result<u16, String> {
    let bad = || format!("{s:?} is not a time of day (HH:MM, 00:00 to 24:00)");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

impl Window {
    /// Parses `DAYS HH:MM-HH:MM`, DAYS being `mon`, `mon-fri`, `sat,sun` or `daily`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (days_text, span) = text.trim().split_once(char::is_whitespace).ok_or_else(|| {
            format!("{text:?}: expected `DAYS HH:MM-HH:MM`, e.g. `mon-fri 07:00-19:00`")
        })?;
        let mut days = 0u8;
        if days_text.eq_ignore_ascii_case("daily") {
            days = 0x7f;
        } else {
            for part in days_text.split(',') {
                match part.split_once('-') {
                    Some((a, b)) => {
                        let (a, b) = (day(a)?, day(b)?);
                        let mut d = a;
                        loop {
                            days |= 1 << d;
                            if d == b {
                                break;
                            }
                            d = (d + 1) % 7;
                        }
                    }
                    None => days |= 1 << day(part)?,
                }
            }
        }
        let (from, to) = span
            .trim()
            .split_once('-')
            .ok_or_else(|| format!("{text:?}: expected a time span HH:MM-HH:MM"))?;
        let (from, to) = (minutes(from.trim())?, minutes(to.trim())?);
        if from >= to {
            return Err(format!(
                "{text:?}: the span must end after it starts (split a night into two windows)"
            ));
        }
        Ok(Self { days, from, to })
    }

    fn contains(&self, weekday: Weekday, minute: u16) -> bool {
        let d = weekday.to_monday_zero_offset() as u8;
        self.days & (1 << d) != 0 && (self.from..self.to).contains(&minute)
    }
}

impl std::fmt::Display for Window {
    /// The canonical text [`Window::parse`] reads back: `daily` or days by name
    /// (`mon,tue,wed 07:00-19:00`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.days == 0x7f {
            f.write_str("daily")?;
        } else {
            let names: Vec<&str> = (0..7)
                .filter(|d| self.days & (1 << d) != 0)
                .map(|d| DAYS[d])
                .collect();
            f.write_str(&names.join(","))?;
        }
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        write!(f, " {}-{}", hm(self.from), hm(self.to))
    }
}

/// A person's windows; empty means always.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule(pub Vec<Window>);

impl Schedule {
    /// Parses a list of windows; the error names the index of the first bad one.
    pub fn parse_all(texts: &[String]) -> Result<Self, (usize, String)> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| Window::parse(t).map_err(|e| (i, e)))
            .collect::<Result<Vec<_>, _>>()
            .map(Schedule)
    }

    /// The windows as canonical texts (what the gallery stores and `gallery list` shows).
    pub fn texts(&self) -> Vec<String> {
        self.0.iter().map(Window::to_string).collect()
    }

    /// Whether `at` (Unix seconds) falls in a window, in time zone `tz`.
    pub fn allows(&self, at: f64, tz: &TimeZone) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let Ok(ts) = Timestamp::from_second(at.floor() as i64) else {
            return false;
        };
        let local = ts.to_zoned(tz.clone());
        let minute = local.hour() as u16 * 60 + local.minute() as u16;
        self.0.iter().any(|w| w.contains(local.weekday(), minute))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(date: &str, tz: &TimeZone) -> f64 {
        let dt: jiff::civil::DateTime = date.parse().unwrap();
        dt.to_zoned(tz.clone()).unwrap().timestamp().as_second() as f64
    }

    #[test]
    fn windows_follow_days_and_hours_in_the_door_s_time_zone() {
        let s = Schedule(vec![
            Window::parse("mon-fri 07:00-19:00").unwrap(),
            Window::parse("sat 09:00-12:30").unwrap(),
        ]);
        // Fixed offsets, so the test needs no time zone database.
        let plus1 = TimeZone::fixed(jiff::tz::offset(1));
        // 2026-11-30 is a Monday.
        assert!(s.allows(at("2026-11-30T07:00", &plus1), &plus1));
        assert!(!s.allows(at("2026-11-30T06:59", &plus1), &plus1));
        assert!(!s.allows(at("2026-11-30T19:00", &plus1), &plus1));
        assert!(
            s.allows(at("2026-12-05T12:29", &plus1), &plus1),
            "Saturday morning"
        );
        assert!(!s.allows(at("2026-12-06T10:00", &plus1), &plus1), "Sunday");
        // The same instant is 06:30 at +01:00 but 07:30 at +02:00.
        let plus2 = TimeZone::fixed(jiff::tz::offset(2));
        let t = at("2026-11-30T06:30", &plus1);
        assert!(!s.allows(t, &plus1) && s.allows(t, &plus2));
        assert!(Schedule::default().allows(t, &plus1), "no schedule: always");
        // Wrapping day ranges and lists.
        let w = Window::parse("fri-mon 00:00-24:00").unwrap();
        assert_eq!(w.days, 0b111_0001);
        assert_eq!(
            Window::parse("sat,sun 10:00-11:00").unwrap().days,
            0b110_0000
        );
    }

    #[test]
    fn bad_windows_say_what_is_wrong() {
        for (text, says) in [
            ("weekdays 07:00-19:00", "not a day"),
            ("mon 7-19", "time of day"),
            ("mon 19:00-07:00", "end after it starts"),
            ("mon 25:00-26:00", "time of day"),
            ("mon", "expected"),
        ] {
            let err = Window::parse(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn windows_print_as_text_that_parses_back_to_them() {
        for text in [
            "mon-fri 07:00-19:00",
            "daily 00:00-24:00",
            "sat,sun 10:30-12:00",
            "fri-mon 08:00-09:15",
        ] {
            let w = Window::parse(text).unwrap();
            assert_eq!(Window::parse(&w.to_string()).unwrap(), w, "{text} -> {w}");
        }
        assert_eq!(
            Window::parse("mon-fri 07:00-19:00").unwrap().to_string(),
            "mon,tue,wed,thu,fri 07:00-19:00"
        );
        let s =
            Schedule::parse_all(&["daily 06:00-22:00".into(), "sat 22:00-24:00".into()]).unwrap();
        assert_eq!(s.texts(), ["daily 06:00-22:00", "sat 22:00-24:00"]);
        let bad = Schedule::parse_all(&["daily 06:00-22:00".into(), "someday 1-2".into()]);
        assert_eq!(bad.unwrap_err().0, 1);
    }
}
