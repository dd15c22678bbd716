//! Time zones for the date module (`web/date.js`, `web/local_time.js`): offsets and
//! abbreviations from the time-zone database compiled into the binary
//! (jiff's bundled copy, asked for by name, so no zone file is ever
//! opened, whatever features other crates enable). A zone the database
//! does not know is UTC.

use std::cell::RefCell;
use std::sync::OnceLock;

use jiff::Timestamp;
use jiff::tz::{Offset, TimeZone, TimeZoneDatabase};
use rquickjs::{Ctx, Function, Object};

fn database() -> &'static TimeZoneDatabase {
    static DB: OnceLock<TimeZoneDatabase> = OnceLock::new();
    DB.get_or_init(TimeZoneDatabase::bundled)
}

/// Whether the compiled-in database knows `name` (for checking a
/// tenant's configured zone when it is set).
pub fn time_zone_known(name: &str) -> bool {
    database().get(name).is_ok()
}

/// Zones this thread looked up lately, by the name they were asked for.
const CACHED: usize = 8;

thread_local! {
    static ZONES: RefCell<Vec<(String, TimeZone)>> = const { RefCell::new(Vec::new()) };
}

/// The zone `name`, or UTC.
pub(crate) fn zone(name: &str) -> TimeZone {
    let found = ZONES.with(|z| {
        let mut z = z.borrow_mut();
        let at = z.iter().position(|(n, _)| n == name)?;
        let hit = z.remove(at);
        let tz = hit.1.clone();
        z.push(hit);
        Some(tz)
    });
    if let Some(tz) = found {
        return tz;
    }
    let tz = database().get(name).unwrap_or(TimeZone::UTC);
    ZONES.with(|z| {
        let mut z = z.borrow_mut();
        if z.len() >= CACHED {
            z.remove(0);
        }
        z.push((name.to_owned(), tz.clone()));
    });
    tz
}

/// The database's name of `name`'s zone (`UTC` for one it does not know).
pub(crate) fn canonical(name: &str) -> String {
    zone(name).iana_name().unwrap_or("UTC").to_owned()
}

/// A time value (ms since the epoch, any `f64` the date module has) as a
/// timestamp, clamped into the database's range: outside it, the nearest
/// end's offset holds.
fn timestamp(ms: f64) -> Timestamp {
    let lo = Timestamp::MIN.as_millisecond() + 86_400_000;
    let hi = Timestamp::MAX.as_millisecond() - 86_400_000;
    let ms = if ms.is_nan() {
        0
    } else {
        (ms as i64).clamp(lo, hi)
    };
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Local time minus UTC, in ms, at the instant `t`.
pub(crate) fn offset_at(tz: &TimeZone, t: f64) -> f64 {
    f64::from(tz.to_offset(timestamp(t)).seconds()) * 1000.0
}

/// The offset to subtract from the local time `l` (ms since the local
/// epoch) for its instant: in a gap, the offset before it (the time moves
/// forward), in a fold, the earlier instant's (ECMA-262's `UTC(t)`).
pub(crate) fn offset_for_local(tz: &TimeZone, l: f64) -> f64 {
    let ts = timestamp(l);
    let wall = Offset::UTC.to_datetime(ts);
    match tz.to_ambiguous_timestamp(wall).compatible() {
        Ok(instant) => (ts.as_millisecond() - instant.as_millisecond()) as f64,
        Err(_) => offset_at(tz, l),
    }
}

/// The zone's abbreviation at `t` (`CET`, `EDT`, or `+0530` where the
/// database has none).
pub(crate) fn abbreviation(tz: &TimeZone, t: f64) -> String {
    tz.to_offset_info(timestamp(t)).abbreviation().to_owned()
}

/// The date module's natives.
pub(crate) fn natives<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Object<'js>> {
    let o = Object::new(ctx.clone())?;
    o.set(
        "tzOffset",
        Function::new(ctx.clone(), |name: String, t: f64| {
            offset_at(&zone(&name), t)
        })?,
    )?;
    o.set(
        "tzLocalOffset",
        Function::new(ctx.clone(), |name: String, l: f64| {
            offset_for_local(&zone(&name), l)
        })?,
    )?;
    o.set(
        "tzName",
        Function::new(ctx.clone(), |name: String, t: f64| {
            abbreviation(&zone(&name), t)
        })?,
    )?;
    // The local-time part of the date module, loaded on its first use.
    o.set(
        "loadLocalTime",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>| -> rquickjs::Result<Function<'js>> {
                // SAFETY: the bytecode was produced by `compile::compile`.
                unsafe { crate::compile::load(&ctx, crate::cache::local_time())? }.get()
            },
        )?,
    )?;
    o.set(
        "tzCanonical",
        Function::new(ctx.clone(), |name: String| canonical(&name))?,
    )?;
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_come_from_the_bundled_database() {
        let berlin = zone("Europe/Berlin");
        // 2020-01-01T00:00Z: CET; 2020-07-01T00:00Z: CEST.
        assert_eq!(offset_at(&berlin, 1_577_836_800_000.0), 3_600_000.0);
        assert_eq!(offset_at(&berlin, 1_593_561_600_000.0), 7_200_000.0);
        assert_eq!(abbreviation(&berlin, 1_593_561_600_000.0), "CEST");
        // 2020-03-29T02:30 does not exist in Berlin: the offset before
        // the gap (+01:00) holds, so it is 01:30Z.
        let gap = 1_585_449_000_000.0; // 2020-03-29T02:30 as if UTC
        assert_eq!(offset_for_local(&berlin, gap), 3_600_000.0);
        // 2020-10-25T02:30 happens twice: the earlier (+02:00).
        let fold = 1_603_593_000_000.0;
        assert_eq!(offset_for_local(&berlin, fold), 7_200_000.0);
        assert_eq!(offset_at(&zone("No/Such_Zone"), 0.0), 0.0);
        assert_eq!(canonical("europe/berlin"), "Europe/Berlin");
        assert!(time_zone_known("Australia/Lord_Howe"));
        assert!(!time_zone_known("Mars/Olympus_Mons"));
        // Far outside the database's range: no panic, the nearest offset.
        assert_eq!(offset_at(&berlin, 8.64e15), 3_600_000.0);
        assert_eq!(offset_at(&berlin, f64::NAN), 3_600_000.0);
    }
}
