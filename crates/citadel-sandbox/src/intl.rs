//! The native half of `Intl` (`web/intl.js` is the other): ICU4X with its
//! compiled data, no I/O. Each function takes a locale the JS side
//! resolved (see [`resolve`]) and options it already checked, as JSON,
//! and returns the formatted string (or the category, or the order).
//! Formatters are kept per thread, the last few by locale and options
//! (they hold nothing but the locale's data), so that sorting with a
//! `Collator` or formatting in a loop does not make one per call.

use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;
use std::str::FromStr;

use fixed_decimal::{Decimal, FloatPrecision, SignedRoundingMode, UnsignedRoundingMode};
use icu_collator::options::{CaseLevel, CollatorOptions, Strength};
use icu_collator::preferences::CollationNumericOrdering;
use icu_collator::{Collator, CollatorPreferences};
use icu_datetime::DateTimeFormatter;
use icu_datetime::fieldbag::DateTimeFieldBag;
use icu_datetime::fieldsets::builder::{DateFields, FieldSetBuilder, ZoneStyle};
use icu_datetime::fieldsets::enums::CompositeFieldSet;
use icu_datetime::options::{Length, TimePrecision, YearStyle};
use icu_decimal::options::{
    CompactDecimalFormatterOptions, DecimalFormatterOptions, GroupingStrategy,
};
use icu_decimal::{CompactDecimalFormatter, DecimalFormatter};
use icu_experimental::dimension::currency::CurrencyType;
use icu_experimental::dimension::currency::formatter::CurrencyFormatter;
use icu_experimental::dimension::percent::formatter::PercentFormatter;
use icu_experimental::relativetime::RelativeTimeFormatter;
use icu_experimental::relativetime::options::{Numeric, RelativeTimeFormatterOptions};
use icu_list::ListFormatter;
use icu_list::options::{ListFormatterOptions, ListLength};
use icu_locale::Locale;
use icu_plurals::{PluralCategory, PluralRules};
use rquickjs::{Ctx, Function, Object};
use serde::Deserialize;
use writeable::Writeable;

/// The languages whose data the build documents as supported (ICU4X's
/// compiled data holds more; a locale of another language resolves to
/// the default, `en-US`, as ECMA-402 says for an unsupported one).
const LANGUAGES: &[&str] = &[
    "af", "ar", "bg", "bn", "ca", "cs", "cy", "da", "de", "el", "en", "es", "et", "eu", "fa", "fi",
    "fil", "fr", "ga", "gl", "gu", "he", "hi", "hr", "hu", "id", "is", "it", "ja", "kn", "ko",
    "lt", "lv", "ml", "mr", "ms", "nb", "nl", "nn", "no", "pl", "pt", "ro", "ru", "sk", "sl", "sr",
    "sv", "sw", "ta", "te", "th", "tr", "uk", "ur", "vi", "zh",
];

pub(crate) const DEFAULT_LOCALE: &str = "en-US";

/// The first of `tags` (a well-formed BCP 47 tag each) whose language is
/// supported, canonicalised, without its Unicode extensions; else
/// `en-US`. `None` when a tag is malformed (a `RangeError` in JS).
pub(crate) fn resolve(tags: &[String]) -> Option<String> {
    let mut found = None;
    for tag in tags {
        let mut locale = Locale::try_from_str(tag).ok()?;
        if found.is_none() && LANGUAGES.contains(&locale.id.language.as_str()) {
            locale.extensions = Default::default();
            found = Some(locale.to_string());
        }
    }
    Some(found.unwrap_or_else(|| DEFAULT_LOCALE.to_owned()))
}

fn locale(tag: &str) -> Locale {
    Locale::try_from_str(tag)
        .unwrap_or_else(|_| Locale::try_from_str(DEFAULT_LOCALE).expect("en-US"))
}

/// Formatters this thread made lately.
const CACHED: usize = 16;

thread_local! {
    static FORMATTERS: RefCell<Vec<(String, Rc<dyn Any>)>> = const { RefCell::new(Vec::new()) };
}

/// The formatter `key` names, made by `make` unless this thread has it.
fn cached<T: 'static>(key: String, make: impl FnOnce() -> Option<T>) -> Option<Rc<T>> {
    let hit = FORMATTERS.with(|f| {
        let mut f = f.borrow_mut();
        let at = f.iter().position(|(k, _)| *k == key)?;
        let entry = f.remove(at);
        let found = Rc::clone(&entry.1).downcast::<T>().ok();
        f.push(entry);
        found
    });
    if hit.is_some() {
        return hit;
    }
    let made = Rc::new(make()?);
    FORMATTERS.with(|f| {
        let mut f = f.borrow_mut();
        if f.len() >= CACHED {
            f.remove(0);
        }
        f.push((key, Rc::clone(&made) as Rc<dyn Any>));
    });
    Some(made)
}

fn text(w: impl Writeable) -> String {
    w.write_to_string().into_owned()
}

/// Formatted text in ECMA-402's parts: `(type, text)`, each ICU4X part
/// by the outermost annotation around it (a year's digits are `year`, not
/// `integer`; but a group is a `group`), anything unannotated `literal`.
#[derive(Default)]
struct Parts {
    out: Vec<(&'static str, String)>,
    current: &'static str,
}

impl std::fmt::Write for Parts {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if s.is_empty() {
            return Ok(());
        }
        let kind = if self.current.is_empty() {
            "literal"
        } else {
            self.current
        };
        match self.out.last_mut() {
            Some((k, text)) if *k == kind => text.push_str(s),
            _ => self.out.push((kind, s.to_owned())),
        }
        Ok(())
    }
}

impl writeable::PartsWrite for Parts {
    type SubPartsWrite = Parts;

    fn with_part(
        &mut self,
        part: writeable::Part,
        mut f: impl FnMut(&mut Parts) -> std::fmt::Result,
    ) -> std::fmt::Result {
        if !self.current.is_empty() {
            // A number's groups are inside its integer part.
            if self.current == "integer" && part.value == "group" {
                self.current = "group";
                let done = f(self);
                self.current = "integer";
                return done;
            }
            return f(self);
        }
        self.current = match part.value {
            "era" | "year" | "month" | "day" | "weekday" | "dayPeriod" | "hour" | "minute"
            | "second" | "timeZoneName" | "integer" | "fraction" | "group" | "decimal"
            | "minusSign" | "plusSign" => part.value,
            "extendedYear" | "relatedYear" | "yearName" => "year",
            _ => "",
        };
        let done = f(self);
        self.current = "";
        done
    }
}

fn parts(w: impl Writeable) -> Vec<(&'static str, String)> {
    let mut sink = Parts::default();
    let _ = w.write_to_parts(&mut sink);
    sink.out
}

/// Number parts: what is neither a number's part nor space is the
/// currency, the percent sign or the compact suffix, as the style says.
fn number_parts(w: impl Writeable, other: &'static str) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (kind, text) in parts(w) {
        if kind != "literal" {
            out.push((kind, text));
            continue;
        }
        // Split off leading and trailing spaces as literals.
        let trimmed =
            text.trim_matches(|c: char| c.is_whitespace() || c == '\u{a0}' || c == '\u{202f}');
        if trimmed.is_empty() || other == "literal" {
            out.push(("literal", text));
            continue;
        }
        let start = text.find(trimmed).unwrap_or(0);
        if start > 0 {
            out.push(("literal", text[..start].to_owned()));
        }
        out.push((other, trimmed.to_owned()));
        let end = start + trimmed.len();
        if end < text.len() {
            out.push(("literal", text[end..].to_owned()));
        }
    }
    out
}

// ---- numbers ----

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct NumberOptions {
    style: String,
    currency: String,
    currency_display: String,
    notation: String,
    compact_display: String,
    use_grouping: bool,
    minimum_integer_digits: i16,
    minimum_fraction_digits: i16,
    maximum_fraction_digits: i16,
    minimum_significant_digits: Option<i16>,
    maximum_significant_digits: Option<i16>,
}

fn half_expand() -> SignedRoundingMode {
    SignedRoundingMode::Unsigned(UnsignedRoundingMode::HalfExpand)
}

/// `x` rounded as ECMA-402's digit options say.
fn rounded(x: f64, o: &NumberOptions) -> Decimal {
    let mut d = Decimal::try_from_f64(x, FloatPrecision::RoundTrip).unwrap_or_default();
    if let (Some(min), Some(max)) = (o.minimum_significant_digits, o.maximum_significant_digits) {
        let top = if d.absolute.is_zero() {
            0
        } else {
            d.absolute.nonzero_magnitude_start()
        };
        d.round_with_mode(top - max + 1, half_expand());
        // Rounding up may have added a digit at the top.
        let top = if d.absolute.is_zero() {
            0
        } else {
            d.absolute.nonzero_magnitude_start()
        };
        d.absolute.trim_end();
        d.absolute.pad_end(top - min + 1);
    } else {
        d.round_with_mode(-o.maximum_fraction_digits, half_expand());
        d.absolute.trim_end();
        d.absolute.pad_end(-o.minimum_fraction_digits);
    }
    d.absolute.trim_start();
    d.absolute.pad_start(o.minimum_integer_digits.max(1));
    d
}

fn decimal_options(o: &NumberOptions) -> DecimalFormatterOptions {
    let mut options = DecimalFormatterOptions::default();
    if !o.use_grouping {
        options.grouping_strategy = Some(GroupingStrategy::Never);
    }
    options
}

fn number_format(tag: String, options: String, x: f64) -> Option<String> {
    Some(
        number_format_parts(tag, options, x)?
            .into_iter()
            .map(|(_, t)| t)
            .collect(),
    )
}

fn number_format_parts(
    tag: String,
    options: String,
    x: f64,
) -> Option<Vec<(&'static str, String)>> {
    let options_json = options;
    let o: NumberOptions = serde_json::from_str(&options_json).ok()?;
    let loc = locale(&tag);
    if !x.is_finite() {
        // The JS side formats NaN and infinities.
        return None;
    }
    if o.notation == "compact" {
        let prefs = (&loc).into();
        let mut options = CompactDecimalFormatterOptions::default();
        if !o.use_grouping {
            options.grouping_strategy = Some(GroupingStrategy::Never);
        }
        let f = cached(format!("compact|{tag}|{options_json}"), || {
            if o.compact_display == "long" {
                CompactDecimalFormatter::try_new_long(prefs, options).ok()
            } else {
                CompactDecimalFormatter::try_new_short(prefs, options).ok()
            }
        })?;
        let d = Decimal::try_from_f64(x, FloatPrecision::RoundTrip).ok()?;
        return Some(number_parts(f.format(&d), "compact"));
    }
    match o.style.as_str() {
        "percent" => {
            let mut d = Decimal::try_from_f64(x, FloatPrecision::RoundTrip).ok()?;
            d.multiply_pow10(2);
            let d = rounded_decimal(d, &o);
            let f = cached(format!("percent|{tag}"), || {
                PercentFormatter::try_new((&loc).into(), Default::default()).ok()
            })?;
            let plain = cached(format!("decimal|{tag}|{}", o.use_grouping), || {
                DecimalFormatter::try_new((&loc).into(), decimal_options(&o)).ok()
            })?;
            // ICU4X's percent formatter marks no parts: the number's are
            // the plain formatter's, what is around it the sign's.
            let full = text(f.format(&d));
            let number = parts(plain.format(&d));
            let digits: String = number.iter().map(|(_, t)| t.as_str()).collect();
            let Some(at) = full.find(&digits) else {
                return Some(vec![("literal", full)]);
            };
            let mut out = number_parts(&full[..at], "percentSign");
            out.extend(number);
            out.extend(number_parts(&full[at + digits.len()..], "percentSign"));
            Some(out)
        }
        "currency" => {
            let code = CurrencyType::try_from_str(&o.currency).ok()?;
            let prefs = (&loc).into();
            let f = cached(format!("currency|{tag}|{options_json}"), || {
                match o.currency_display.as_str() {
                    "code" => CurrencyFormatter::try_new_code(prefs, code, Default::default()),
                    "name" => CurrencyFormatter::try_new_name(prefs, code),
                    "narrowSymbol" => {
                        CurrencyFormatter::try_new_symbol_narrow(prefs, code, Default::default())
                    }
                    _ => CurrencyFormatter::try_new_symbol(prefs, code, Default::default()),
                }
                .ok()
            })?;
            let d = rounded(x, &o);
            Some(number_parts(f.format_fixed_decimal(&d), "currency"))
        }
        _ => {
            let f = cached(format!("decimal|{tag}|{}", o.use_grouping), || {
                DecimalFormatter::try_new((&loc).into(), decimal_options(&o)).ok()
            })?;
            Some(number_parts(f.format(&rounded(x, &o)), "literal"))
        }
    }
}

/// `d` (already scaled) rounded as the digit options say.
fn rounded_decimal(mut d: Decimal, o: &NumberOptions) -> Decimal {
    d.round_with_mode(-o.maximum_fraction_digits, half_expand());
    d.absolute.trim_end();
    d.absolute.pad_end(-o.minimum_fraction_digits);
    d.absolute.trim_start();
    d.absolute.pad_start(o.minimum_integer_digits.max(1));
    d
}

// ---- plurals ----

fn plural_select(tag: String, ordinal: bool, x: f64, min_fraction: i16) -> String {
    let loc = locale(&tag);
    let rules = cached(format!("plural|{tag}|{ordinal}"), || {
        if ordinal {
            PluralRules::try_new_ordinal((&loc).into()).ok()
        } else {
            PluralRules::try_new_cardinal((&loc).into()).ok()
        }
    });
    let Some(rules) = rules else {
        return "other".to_owned();
    };
    let mut d = Decimal::try_from_f64(x.abs(), FloatPrecision::RoundTrip).unwrap_or_default();
    d.round_with_mode(-3, half_expand());
    d.absolute.trim_end();
    d.absolute.pad_end(-min_fraction);
    match rules.category_for(&d) {
        PluralCategory::Zero => "zero",
        PluralCategory::One => "one",
        PluralCategory::Two => "two",
        PluralCategory::Few => "few",
        PluralCategory::Many => "many",
        PluralCategory::Other => "other",
    }
    .to_owned()
}

// ---- collation ----

fn collate(tag: String, sensitivity: String, numeric: bool, a: String, b: String) -> i32 {
    let loc = locale(&tag);
    let mut prefs: CollatorPreferences = (&loc).into();
    if numeric {
        prefs.numeric_ordering = Some(CollationNumericOrdering::True);
    }
    let mut options = CollatorOptions::default();
    match sensitivity.as_str() {
        "base" => options.strength = Some(Strength::Primary),
        "accent" => options.strength = Some(Strength::Secondary),
        "case" => {
            options.strength = Some(Strength::Primary);
            options.case_level = Some(CaseLevel::On);
        }
        _ => options.strength = Some(Strength::Tertiary),
    }
    let collator = cached(format!("collator|{tag}|{sensitivity}|{numeric}"), || {
        Collator::try_new(prefs, options).ok()
    });
    match collator {
        Some(c) => c.compare(&a, &b) as i32,
        None => a.cmp(&b) as i32,
    }
}

// ---- lists ----

fn list_format(tag: String, kind: String, style: String, items: Vec<String>) -> String {
    let loc = locale(&tag);
    let length = match style.as_str() {
        "short" => ListLength::Short,
        "narrow" => ListLength::Narrow,
        _ => ListLength::Wide,
    };
    let options = ListFormatterOptions::default().with_length(length);
    let f = cached(format!("list|{tag}|{kind}|{style}"), || {
        match kind.as_str() {
            "disjunction" => ListFormatter::try_new_or((&loc).into(), options),
            "unit" => ListFormatter::try_new_unit((&loc).into(), options),
            _ => ListFormatter::try_new_and((&loc).into(), options),
        }
        .ok()
    });
    match f {
        Some(f) => text(f.format(items.iter().map(String::as_str))),
        None => items.join(", "),
    }
}

// ---- relative time ----

fn relative_time(tag: String, unit: String, style: String, auto: bool, x: f64) -> Option<String> {
    let loc = locale(&tag);
    let prefs = (&loc).into();
    let options = RelativeTimeFormatterOptions::default().with_numeric(if auto {
        Numeric::Auto
    } else {
        Numeric::Always
    });
    macro_rules! pick {
        ($($unit:literal => $long:ident $short:ident $narrow:ident),*) => {
            match (unit.as_str(), style.as_str()) {
                $(
                    ($unit, "short") => RelativeTimeFormatter::$short(prefs, options),
                    ($unit, "narrow") => RelativeTimeFormatter::$narrow(prefs, options),
                    ($unit, _) => RelativeTimeFormatter::$long(prefs, options),
                )*
                _ => return None,
            }
        };
    }
    if !matches!(
        unit.as_str(),
        "second" | "minute" | "hour" | "day" | "week" | "month" | "quarter" | "year"
    ) {
        return None;
    }
    let key = format!("relative|{tag}|{unit}|{style}|{auto}");
    let f = cached(key, || {
        pick!(
            "second" => try_new_long_second try_new_short_second try_new_narrow_second,
            "minute" => try_new_long_minute try_new_short_minute try_new_narrow_minute,
            "hour" => try_new_long_hour try_new_short_hour try_new_narrow_hour,
            "day" => try_new_long_day try_new_short_day try_new_narrow_day,
            "week" => try_new_long_week try_new_short_week try_new_narrow_week,
            "month" => try_new_long_month try_new_short_month try_new_narrow_month,
            "quarter" => try_new_long_quarter try_new_short_quarter try_new_narrow_quarter,
            "year" => try_new_long_year try_new_short_year try_new_narrow_year
        )
        .ok()
    })?;
    let d = Decimal::try_from_f64(x, FloatPrecision::RoundTrip).ok()?;
    Some(text(f.format(d)))
}

// ---- dates ----

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct DateOptions {
    /// A UTS #35 skeleton of the fields asked for, when no style is.
    skeleton: String,
    date_style: String,
    time_style: String,
    hour12: Option<bool>,
}

fn length(style: &str) -> Length {
    match style {
        "full" | "long" => Length::Long,
        "short" => Length::Short,
        _ => Length::Medium,
    }
}

/// The formatter of a locale and options.
fn date_formatter(tag: &str, options: &str) -> Option<DateTimeFormatter<CompositeFieldSet>> {
    let o: DateOptions = serde_json::from_str(options).ok()?;
    let mut loc = locale(tag);
    if let Some(h12) = o.hour12 {
        let hc = if h12 { "h12" } else { "h23" };
        loc = Locale::from_str(&format!("{}-u-hc-{hc}", loc.id)).unwrap_or(loc);
    }
    let field_set = if o.date_style.is_empty() && o.time_style.is_empty() {
        DateTimeFieldBag::from_skeleton(&o.skeleton).to_composite_field_set()
    } else {
        let mut b = FieldSetBuilder::default();
        if !o.date_style.is_empty() {
            b.length = Some(length(&o.date_style));
            b.date_fields = Some(if o.date_style == "full" {
                DateFields::YMDE
            } else {
                DateFields::YMD
            });
            if o.date_style == "short" {
                b.year_style = Some(YearStyle::Auto);
            }
        }
        if !o.time_style.is_empty() {
            if o.date_style.is_empty() {
                b.length = Some(length(&o.time_style));
            }
            b.time_precision = Some(if o.time_style == "short" {
                TimePrecision::Minute
            } else {
                TimePrecision::Second
            });
            match o.time_style.as_str() {
                "full" => b.zone_style = Some(ZoneStyle::SpecificLong),
                "long" => b.zone_style = Some(ZoneStyle::SpecificShort),
                _ => {}
            }
        }
        b.build_composite().ok()?
    };
    DateTimeFormatter::try_new((&loc).into(), field_set).ok()
}

/// Formats the instant `ms` in the zone `zone` (a name the date module
/// resolved).
fn date_format(tag: String, options: String, ms: f64, zone: String) -> Option<String> {
    Some(
        date_format_parts(tag, options, ms, zone)?
            .into_iter()
            .map(|(_, t)| t)
            .collect(),
    )
}

fn date_format_parts(
    tag: String,
    options: String,
    ms: f64,
    zone: String,
) -> Option<Vec<(&'static str, String)>> {
    let f = cached(format!("date|{tag}|{options}"), || {
        date_formatter(&tag, &options)
    })?;
    let tz = crate::zone::zone(&zone);
    let ts = jiff::Timestamp::from_millisecond(ms as i64).ok()?;
    let zoned = ts.to_zoned(tz);
    // RFC 9557 text of the instant in its zone, which ICU4X reads.
    let ixdtf = if zoned.time_zone().iana_name().is_some_and(|n| n != "UTC") {
        zoned.to_string()
    } else {
        format!("{}+00:00[Etc/UTC]", zoned.datetime())
    };
    let input = icu_time::ZonedDateTime::try_strict_from_str(
        &ixdtf,
        icu_calendar::Iso,
        icu_time::zone::IanaParser::new(),
    )
    .ok()?;
    // As V8 does (and so Deno and Node): the narrow no-break space CLDR
    // puts before a day period is an ordinary space.
    Some(
        parts(f.format(&input))
            .into_iter()
            .map(|(k, t)| (k, t.replace('\u{202f}', " ")))
            .collect(),
    )
}

fn flat(parts: Vec<(&'static str, String)>) -> Vec<String> {
    parts
        .into_iter()
        .flat_map(|(k, t)| [k.to_owned(), t])
        .collect()
}

/// The `Intl` natives, handed to the `Intl` module.
pub(crate) fn natives<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Object<'js>> {
    let o = Object::new(ctx.clone())?;
    o.set(
        "resolveLocale",
        Function::new(ctx.clone(), |tags: Vec<String>| resolve(&tags))?,
    )?;
    o.set(
        "canonicalZone",
        Function::new(ctx.clone(), |name: String| {
            crate::zone::time_zone_known(&name).then(|| crate::zone::canonical(&name))
        })?,
    )?;
    o.set("numberFormat", Function::new(ctx.clone(), number_format)?)?;
    o.set("pluralSelect", Function::new(ctx.clone(), plural_select)?)?;
    o.set("collate", Function::new(ctx.clone(), collate)?)?;
    o.set("listFormat", Function::new(ctx.clone(), list_format)?)?;
    o.set("relativeTime", Function::new(ctx.clone(), relative_time)?)?;
    o.set("dateFormat", Function::new(ctx.clone(), date_format)?)?;
    // Parts as `[type, text, type, text, …]`.
    o.set(
        "numberFormatParts",
        Function::new(ctx.clone(), |tag: String, options: String, x: f64| {
            number_format_parts(tag, options, x).map(flat)
        })?,
    )?;
    o.set(
        "dateFormatParts",
        Function::new(
            ctx.clone(),
            |tag: String, options: String, ms: f64, zone: String| {
                date_format_parts(tag, options, ms, zone).map(flat)
            },
        )?,
    )?;
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nf(tag: &str, options: &str, x: f64) -> String {
        number_format(tag.into(), options.into(), x).unwrap()
    }

    #[test]
    fn the_seed_amount_formats_as_deno_does() {
        let eur = r#"{"style":"currency","currency":"EUR","useGrouping":true,"minimumFractionDigits":2,"maximumFractionDigits":2}"#;
        assert_eq!(nf("de-DE", eur, 1234.5), "1.234,50\u{a0}€");
        let plain = r#"{"style":"decimal","useGrouping":true,"maximumFractionDigits":3}"#;
        assert_eq!(nf("en-US", plain, 1234.5678), "1,234.568");
        assert_eq!(resolve(&["xx-YY".into()]).unwrap(), "en-US");
        assert_eq!(resolve(&["de-de".into()]).unwrap(), "de-DE");
        assert!(resolve(&["not a tag".into()]).is_none());
    }
}
