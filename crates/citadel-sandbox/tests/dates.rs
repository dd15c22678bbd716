//! Local time follows the run's time zone (`Limits::time_zone`): every
//! local-time operation of `Date`, in zones with and without daylight
//! saving time (incl. a half-hour shift), around their transitions,
//! compared with what jiff computes from the same database.

use std::rc::Rc;

use citadel_sandbox::{
    Grants, Language, Limits, NoHost, RunRequest, RunStatus, Sandbox, TimeZoneName,
};
use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

const ZONES: &[&str] = &[
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
];

async fn run_in(zone: &str, source: &str, input: &Value) -> Value {
    let sandbox = Sandbox::default();
    let script = sandbox.load(source, Language::Js);
    let input = input.to_string();
    let out = sandbox
        .run(
            &script,
            RunRequest {
                input_json: &input,
                limits: Limits {
                    time_zone: TimeZoneName::new(zone).unwrap(),
                    ..Limits::default()
                },
                grants: Grants::NONE,
                host: Rc::new(NoHost),
                cancel: None,
            },
        )
        .await;
    assert_eq!(
        out.status,
        RunStatus::Succeeded,
        "{source}: {:?}",
        out.error
    );
    out.result_value()
}

fn tz(zone: &str) -> TimeZone {
    TimeZone::get(zone).unwrap()
}

/// Instants around each zone's transitions of 2020/2021 and a few more.
fn instants(zone: &str) -> Vec<i64> {
    let tz = tz(zone);
    let start = Timestamp::from_second(1_577_836_800).unwrap(); // 2020-01-01
    let mut out = vec![0, 1_577_836_800_000, 951_782_400_000, -2_208_988_800_000];
    for t in tz.following(start).take(4) {
        let at = t.timestamp().as_millisecond();
        for d in [-3_600_001, -1, 0, 1, 1_800_000, 3_600_000] {
            out.push(at + d);
        }
    }
    out
}

fn two(n: i64) -> String {
    format!("{n:02}")
}

/// What `toString` shows: `Wed Jan 01 2020 01:00:00 GMT+0100 (CET)`.
fn to_string(tz: &TimeZone, ms: i64) -> String {
    let ts = Timestamp::from_millisecond(ms).unwrap();
    let z = ts.to_zoned(tz.clone());
    let info = tz.to_offset_info(ts);
    let offset = info.offset().seconds() / 60;
    let sign = if offset < 0 { '-' } else { '+' };
    let o = i64::from(offset.abs());
    format!(
        "{} GMT{sign}{}{} ({})",
        z.strftime("%a %b %d %Y %H:%M:%S"),
        two(o / 60),
        two(o % 60),
        info.abbreviation()
    )
}

#[tokio::test(flavor = "current_thread")]
async fn getters_and_strings_follow_the_zone() {
    let source = "return input.map((t) => { const d = new Date(t); return [d.getFullYear(), d.getMonth(), d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds(), d.getDay(), d.getTimezoneOffset(), d.toString(), d.toDateString(), d.toTimeString(), String(d), d.toLocaleString(), d.getYear()]; });";
    for zone in ZONES {
        let tz = tz(zone);
        let times = instants(zone);
        let got = run_in(zone, source, &json!(times)).await;
        for (i, &t) in times.iter().enumerate() {
            let ts = Timestamp::from_millisecond(t).unwrap();
            let z = ts.to_zoned(tz.clone());
            let offset = tz.to_offset(ts).seconds();
            let full = to_string(&tz, t);
            let (date, time) = full.split_at(15);
            let h = i64::from(z.hour());
            let twelve = if h % 12 == 0 { 12 } else { h % 12 };
            let locale = format!(
                "{}/{}/{}, {twelve}:{}:{} {}",
                z.month(),
                z.day(),
                z.year(),
                two(z.minute().into()),
                two(z.second().into()),
                if h < 12 { "AM" } else { "PM" }
            );
            let want = json!([
                z.year(),
                z.month() - 1,
                z.day(),
                z.hour(),
                z.minute(),
                z.second(),
                z.millisecond(),
                z.weekday().to_sunday_zero_offset(),
                if offset % 60 == 0 {
                    json!(-offset / 60)
                } else {
                    json!(-f64::from(offset) / 60.0)
                },
                full,
                date,
                time.trim_start(),
                full,
                locale,
                i32::from(z.year()) - 1900,
            ]);
            assert_eq!(got[i], want, "{zone} at {t}");
        }
    }
}

/// Local wall-clock times, incl. ones in gaps and folds of each zone.
fn walls(zone: &str) -> Vec<DateTime> {
    let tz = tz(zone);
    let start = Timestamp::from_second(1_577_836_800).unwrap();
    let mut out = vec![
        DateTime::constant(2020, 1, 1, 0, 0, 0, 0),
        DateTime::constant(2020, 7, 15, 12, 34, 56, 789_000_000),
        DateTime::constant(1969, 12, 31, 23, 59, 59, 0),
    ];
    for t in tz.following(start).take(4) {
        // Just before, in the middle of and after the shift, in wall time
        // before the transition.
        let before = t
            .timestamp()
            .checked_sub(jiff::SignedDuration::from_secs(1))
            .unwrap();
        let wall = tz.to_datetime(before);
        for minutes in [0, 1, 15, 29, 30, 31, 59, 60, 61, 90] {
            out.push(
                wall.checked_add(jiff::SignedDuration::from_mins(minutes))
                    .unwrap(),
            );
        }
    }
    out
}

#[tokio::test(flavor = "current_thread")]
async fn local_fields_make_the_instant_the_spec_says() {
    // Gaps move forward by the shift, folds take the earlier instant:
    // jiff's "compatible" disambiguation, which is ECMA-262's `UTC(t)`.
    let source = "return input.map(([y, mo, d, h, mi, s, ms]) => { const iso = `${String(y).padStart(4, '0')}-${String(mo + 1).padStart(2, '0')}-${String(d).padStart(2, '0')}T${String(h).padStart(2, '0')}:${String(mi).padStart(2, '0')}:${String(s).padStart(2, '0')}.${String(ms).padStart(3, '0')}`; const a = new Date(y, mo, d, h, mi, s, ms); const b = new Date(2000, 0, 1); b.setFullYear(y, mo, d); b.setHours(h, mi, s, ms); return [a.getTime(), Date.parse(iso), new Date(iso).getTime(), b.getTime(), Date.parse(`${mo + 1}/${d}/${y} ${h}:${mi}:${s}`) + ms]; });";
    for zone in ZONES {
        let tz = tz(zone);
        let walls = walls(zone);
        let input: Vec<Value> = walls
            .iter()
            .map(|w| {
                json!([
                    w.year(),
                    w.month() - 1,
                    w.day(),
                    w.hour(),
                    w.minute(),
                    w.second(),
                    w.millisecond()
                ])
            })
            .collect();
        let got = run_in(zone, source, &json!(input)).await;
        for (i, w) in walls.iter().enumerate() {
            let want = tz
                .to_ambiguous_timestamp(*w)
                .compatible()
                .unwrap()
                .as_millisecond();
            assert_eq!(
                got[i],
                json!([want, want, want, want, want]),
                "{zone} at {w}"
            );
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn strings_with_an_offset_and_utc_forms_ignore_the_zone() {
    let source = "return [Date.parse('2020-06-01'), Date.parse('2020-06-01T10:00:00Z'), Date.parse('2020-06-01T10:00:00+05:30'), Date.parse('Mon, 01 Jun 2020 10:00:00 GMT'), Date.parse('Mon Jun 01 2020 10:00:00 GMT-0400 (EDT)'), Date.UTC(2020, 5, 1), new Date(2020, 5, 1).toISOString(), Date.parse('nonsense'), new Date(NaN).getHours(), String(new Date(NaN)), new Date(8.64e15).getFullYear(), new Date(-8.64e15).toDateString(), new Date(8.64e15 + 1).getTime()];";
    let berlin = run_in("Europe/Berlin", source, &Value::Null).await;
    let utc = 1_590_969_600_000i64;
    assert_eq!(
        berlin,
        json!([
            utc,
            utc + 36_000_000,
            utc + 36_000_000 - 19_800_000,
            utc + 36_000_000,
            utc + 50_400_000,
            utc,
            "2020-05-31T22:00:00.000Z",
            null,
            null,
            "Invalid Date",
            275760,
            "Tue Apr 20 -271821",
            null
        ])
    );
}

#[tokio::test(flavor = "current_thread")]
async fn date_keeps_its_shape() {
    let source = "class D extends Date { twice() { return this.getHours() * 2; } } const d = new D(2020, 0, 1, 5); return [typeof Date(), Date.length, Date.name, Date.prototype.constructor === Date, d instanceof Date, d.twice(), Object.prototype.toString.call(d), Date.prototype.setHours.length, Date.prototype.setFullYear.length, Date.parse.length, (() => { try { Date.prototype.getHours.call({}); return 'no'; } catch (e) { return e instanceof TypeError; } })(), (() => { try { new Date.prototype.getHours(); return 'no'; } catch (e) { return e instanceof TypeError; } })(), new Date(new Date(5)).getTime(), new Date({ valueOf() { return 7; } }).getTime(), new Date({ toString() { return '2020-01-01T00:00'; }, valueOf: undefined }).getTime(), JSON.stringify(new Date(0)), new Date(99, 0).getFullYear(), new Date(2020, 0, 1).getTime() === new Date(2020, 0).getTime(), new Date(2020, 0, 1) - new Date(2019, 11, 31)];";
    let got = run_in("Asia/Kolkata", source, &Value::Null).await;
    assert_eq!(
        got,
        json!([
            "string",
            7,
            "Date",
            true,
            true,
            10,
            "[object Date]",
            4,
            3,
            1,
            true,
            true,
            5,
            7,
            1_577_817_000_000i64,
            "\"1970-01-01T00:00:00.000Z\"",
            1999,
            true,
            86_400_000
        ])
    );
}

#[tokio::test(flavor = "current_thread")]
async fn an_unknown_zone_is_utc_and_runs_do_not_share_zones() {
    let source = "return [new Date(0).getHours(), new Date(0).getTimezoneOffset()];";
    assert_eq!(
        run_in("Mars/Olympus_Mons", source, &Value::Null).await,
        json!([0, 0])
    );
    assert_eq!(
        run_in("Asia/Kolkata", source, &Value::Null).await,
        json!([5, -330])
    );
    assert_eq!(run_in("UTC", source, &Value::Null).await, json!([0, 0]));
    assert_eq!(
        run_in("Australia/Lord_Howe", source, &Value::Null).await,
        json!([10, -600])
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_warm_context_takes_each_runs_zone() {
    use citadel_sandbox::Isolation;
    let sandbox = Sandbox::default();
    let script = sandbox.load(
        "const d = new Date(0); return [d.getHours(), new Intl.DateTimeFormat('en-US', { hour: 'numeric', hourCycle: 'h23' }).format(d)];",
        Language::Js,
    );
    let mut seen = Vec::new();
    for zone in ["Asia/Kolkata", "America/New_York", "Asia/Kolkata", "UTC"] {
        let out = sandbox
            .run_as_version(
                &script,
                RunRequest {
                    input_json: "null",
                    limits: Limits {
                        time_zone: TimeZoneName::new(zone).unwrap(),
                        isolation: Isolation::Version,
                        ..Limits::default()
                    },
                    grants: Grants::NONE,
                    host: Rc::new(NoHost),
                    cancel: None,
                },
                "tenant/version",
            )
            .await;
        assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
        seen.push(out.result_value());
    }
    assert_eq!(
        seen,
        [
            json!([5, "05"]),
            json!([19, "19"]),
            json!([5, "05"]),
            json!([0, "00"])
        ]
    );
}
