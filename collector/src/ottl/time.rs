//! Parsing times for the `Time` converter with the Collector's ctime-like directives
//! (`%Y-%m-%dT%H:%M:%S.%L%z`), as its `timeutils.ParseStrptime` documents them.
//!
//! Supported: `%Y %y %m %o %q %b %h %B %d %e %g %a %A %H %I %l %p %P %M %S %L %f %s %z %Z
//! %i %j %k %w %D %x %F %T %X %r %R %c %n %t %%`. Anything else after `%` is an error, and
//! so are Go layout words (`2006-01-02`): write the directives. A time without a zone in
//! its format is read in `default_offset` (UTC unless the caller gives a fixed offset).
//! `%Z` takes a zone abbreviation and, as Go does for names it does not know, reads the
//! time at offset 0.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

#[derive(Default)]
struct Parts {
    year: Option<i32>,
    month: Option<u32>,
    day: Option<u32>,
    hour: Option<u32>,
    hour12: Option<u32>,
    pm: Option<bool>,
    minute: u32,
    second: u32,
    nanos: u32,
    offset: Option<i32>,
}

struct Input<'a> {
    text: &'a str,
    pos: usize,
}

impl Input<'_> {
    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn fail(&self, what: &str) -> String {
        format!(
            "cannot parse {:?} as {what} (at byte {} of {:?})",
            self.rest().chars().take(12).collect::<String>(),
            self.pos,
            self.text
        )
    }

    /// Exactly `width` digits, or 1..=`width` when `exact` is false.
    fn digits(&mut self, width: usize, exact: bool, what: &str) -> Result<u32, String> {
        let count = self
            .rest()
            .bytes()
            .take(width)
            .take_while(u8::is_ascii_digit)
            .count();
        if count == 0 || (exact && count != width) {
            return Err(self.fail(what));
        }
        let value = self.rest()[..count]
            .parse::<u32>()
            .map_err(|_| self.fail(what))?;
        self.pos += count;
        Ok(value)
    }

    fn space_padded(&mut self, what: &str) -> Result<u32, String> {
        if self.rest().starts_with(' ') {
            self.pos += 1;
            return self.digits(1, true, what);
        }
        self.digits(2, false, what)
    }

    fn literal(&mut self, c: char) -> Result<(), String> {
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            Ok(())
        } else {
            Err(self.fail(&format!("{c:?}")))
        }
    }

    /// One of `names` (or its first three letters when `short`), case-insensitively; its index.
    fn name(&mut self, names: &[&str], short: bool, what: &str) -> Result<usize, String> {
        let rest = self.rest().to_ascii_lowercase();
        for (i, name) in names.iter().enumerate() {
            let word = if short { &name[..3] } else { name };
            if rest.starts_with(word) {
                self.pos += word.len();
                return Ok(i);
            }
        }
        Err(self.fail(what))
    }

    fn sign(&mut self) -> Result<i32, String> {
        match self.rest().as_bytes().first() {
            Some(b'+') => {
                self.pos += 1;
                Ok(1)
            }
            Some(b'-') => {
                self.pos += 1;
                Ok(-1)
            }
            _ => Err(self.fail("a zone offset (+HH…)")),
        }
    }

    /// `±HH[sep]MM[sep]SS` with the given parts; `Z` reads as UTC.
    fn offset(&mut self, minutes: bool, seconds: bool, sep: bool) -> Result<i32, String> {
        if self.rest().starts_with('Z') {
            self.pos += 1;
            return Ok(0);
        }
        let sign = self.sign()?;
        let hours = self.digits(2, true, "zone hours")? as i32;
        let mut total = hours * 3600;
        if minutes {
            if sep {
                self.literal(':')?;
            }
            total += self.digits(2, true, "zone minutes")? as i32 * 60;
        }
        if seconds {
            if sep {
                self.literal(':')?;
            }
            total += self.digits(2, true, "zone seconds")? as i32;
        }
        Ok(sign * total)
    }
}

/// Parses `text` with `format`; the nanoseconds since the Unix epoch.
pub fn parse(text: &str, format: &str, default_offset: i32) -> Result<i64, String> {
    let mut parts = Parts::default();
    let mut input = Input { text, pos: 0 };
    apply(format, &mut input, &mut parts)?;
    if !input.rest().is_empty() {
        return Err(format!(
            "extra text {:?} after the time in {text:?}",
            input.rest()
        ));
    }
    let year = parts.year.unwrap_or(1970);
    let month = parts.month.unwrap_or(1);
    let day = parts.day.unwrap_or(1);
    let hour = match (parts.hour, parts.hour12, parts.pm) {
        (Some(h), _, _) => h,
        (None, Some(h), pm) => (h % 12) + if pm == Some(true) { 12 } else { 0 },
        (None, None, _) => 0,
    };
    let date = NaiveDate::from_ymd_opt(year, month, day)
        .ok_or_else(|| format!("{text:?} is not a valid date ({year}-{month}-{day})"))?;
    let time = NaiveTime::from_hms_nano_opt(hour, parts.minute, parts.second, parts.nanos)
        .ok_or_else(|| format!("{text:?} is not a valid time of day"))?;
    let local = NaiveDateTime::new(date, time);
    let offset = parts.offset.unwrap_or(default_offset);
    let utc = local - chrono::Duration::seconds(i64::from(offset));
    utc.and_utc()
        .timestamp_nanos_opt()
        .ok_or_else(|| format!("{text:?} is outside the range of a timestamp"))
}

fn apply(format: &str, input: &mut Input<'_>, parts: &mut Parts) -> Result<(), String> {
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            input.literal(c)?;
            continue;
        }
        let Some(directive) = chars.next() else {
            return Err("the format ends with a lone \"%\"".to_string());
        };
        match directive {
            'Y' => parts.year = Some(input.digits(4, true, "a year (%Y)")? as i32),
            'y' => {
                let y = input.digits(2, true, "a two-digit year (%y)")? as i32;
                // Go's rule: 69–99 are the 1900s, 00–68 the 2000s.
                parts.year = Some(if y >= 69 { 1900 + y } else { 2000 + y });
            }
            'm' => parts.month = Some(input.digits(2, true, "a month (%m)")?),
            'o' => parts.month = Some(input.space_padded("a month (%o)")?),
            'q' => parts.month = Some(input.digits(2, false, "a month (%q)")?),
            'b' | 'h' => parts.month = Some(input.name(&MONTHS, true, "a month name")? as u32 + 1),
            'B' => parts.month = Some(input.name(&MONTHS, false, "a month name")? as u32 + 1),
            'd' => parts.day = Some(input.digits(2, true, "a day (%d)")?),
            'e' => parts.day = Some(input.space_padded("a day (%e)")?),
            'g' => parts.day = Some(input.digits(2, false, "a day (%g)")?),
            'a' => {
                input.name(&WEEKDAYS, true, "a weekday name")?;
            }
            'A' => {
                input.name(&WEEKDAYS, false, "a weekday name")?;
            }
            'H' => parts.hour = Some(input.digits(2, true, "an hour (%H)")?),
            'I' => parts.hour12 = Some(input.digits(2, true, "an hour (%I)")?),
            'l' => parts.hour12 = Some(input.digits(2, false, "an hour (%l)")?),
            'p' | 'P' => {
                let rest = input.rest().to_ascii_lowercase();
                let pm = if rest.starts_with("pm") {
                    true
                } else if rest.starts_with("am") {
                    false
                } else {
                    return Err(input.fail("AM or PM"));
                };
                input.pos += 2;
                parts.pm = Some(pm);
            }
            'M' => parts.minute = input.digits(2, true, "minutes (%M)")?,
            'S' => parts.second = input.digits(2, true, "seconds (%S)")?,
            'L' => parts.nanos = input.digits(3, true, "milliseconds (%L)")? * 1_000_000,
            'f' => parts.nanos = input.digits(6, true, "microseconds (%f)")? * 1_000,
            's' => parts.nanos = input.digits(9, true, "nanoseconds (%s)")?,
            'z' => parts.offset = Some(input.offset(true, false, false)?),
            'i' => parts.offset = Some(input.offset(false, false, false)?),
            'j' => parts.offset = Some(input.offset(true, false, true)?),
            'k' => parts.offset = Some(input.offset(true, true, true)?),
            'w' => parts.offset = Some(input.offset(true, true, false)?),
            'Z' => {
                let len = input
                    .rest()
                    .bytes()
                    .take_while(u8::is_ascii_alphabetic)
                    .count();
                if len == 0 {
                    return Err(input.fail("a zone name (%Z)"));
                }
                input.pos += len;
                parts.offset = Some(0);
            }
            'D' | 'x' => apply("%m/%d/%y", input, parts)?,
            'F' => apply("%Y-%m-%d", input, parts)?,
            'T' | 'X' => apply("%H:%M:%S", input, parts)?,
            'r' => apply("%I:%M:%S %p", input, parts)?,
            'R' => apply("%H:%M", input, parts)?,
            'c' => apply("%a %b %d %H:%M:%S %Y", input, parts)?,
            'n' => input.literal('\n')?,
            't' => input.literal('\t')?,
            '%' => input.literal('%')?,
            other => return Err(format!("unsupported directive %{other} in the time format")),
        }
    }
    Ok(())
}

/// Checks a format without parsing a time (for literal formats, at configuration time).
pub fn check_format(format: &str) -> Result<(), String> {
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        match chars.next() {
            None => return Err("the format ends with a lone \"%\"".to_string()),
            Some(d) if "YymoqbhBdegaAHIlpPMSLfsizjkwZDxFTXrRcnt%".contains(d) => {}
            Some(d) => return Err(format!("unsupported directive %{d} in the time format")),
        }
    }
    Ok(())
}

/// A `location` argument: `UTC`, `Local` is refused (a server's zone is not the logs'),
/// or a fixed offset `+08:00` / `-0530`; the offset in seconds.
pub fn parse_location(location: &str) -> Result<i32, String> {
    if location.eq_ignore_ascii_case("utc") || location.eq_ignore_ascii_case("gmt") {
        return Ok(0);
    }
    let mut input = Input {
        text: location,
        pos: 0,
    };
    let parsed = input
        .offset(true, false, true)
        .or_else(|_| {
            input.pos = 0;
            input.offset(true, false, false)
        })
        .ok()
        .filter(|_| input.rest().is_empty());
    parsed.ok_or_else(|| {
        format!("location {location:?} is not supported: use UTC or a fixed offset such as +08:00 (IANA zone names need a time zone database Weft does not carry)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_iso_timestamps_and_other_layouts_parse() {
        let t = parse("2024-05-20T08:30:45.123Z", "%Y-%m-%dT%H:%M:%S.%LZ", 0).unwrap();
        assert_eq!(t, 1_716_193_845_123_000_000);
        let with_zone = parse("2024-05-20T16:30:45.123+0800", "%Y-%m-%dT%H:%M:%S.%L%z", 0).unwrap();
        assert_eq!(with_zone, t);
        let colon = parse("2024-05-20 16:30:45+08:00", "%F %T%j", 0).unwrap();
        assert_eq!(colon, 1_716_193_845_000_000_000);
        let named = parse("Mon May 20 08:30:45 2024", "%c", 0).unwrap();
        assert_eq!(named, 1_716_193_845_000_000_000);
        let pm = parse("05/20/24 08:30:45 PM", "%D %r", 0).unwrap();
        assert_eq!(pm, 1_716_193_845_000_000_000 + 12 * 3600 * 1_000_000_000);
        // Without a zone, the default offset applies.
        let local = parse("2024-05-20 16:30:45", "%F %T", 8 * 3600).unwrap();
        assert_eq!(local, 1_716_193_845_000_000_000);
    }

    #[test]
    fn mismatches_say_where() {
        let e = parse("2024-13-01", "%Y-%m-%d", 0).unwrap_err();
        assert!(e.contains("not a valid date"), "{e}");
        let e = parse("2024/05/01", "%Y-%m-%d", 0).unwrap_err();
        assert!(e.contains("as '-'"), "{e}");
        assert!(parse("2024-05-01x", "%Y-%m-%d", 0)
            .unwrap_err()
            .contains("extra text"));
        assert!(check_format("%Y-%Q").unwrap_err().contains("%Q"));
        assert_eq!(parse_location("+08:00").unwrap(), 8 * 3600);
        assert_eq!(parse_location("-0530").unwrap(), -(5 * 3600 + 30 * 60));
        assert!(parse_location("Asia/Shanghai").is_err());
    }
}
