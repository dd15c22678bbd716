//! Standard Webhooks signatures against the specification's published
//! vector, forged, expired and replayed deliveries, and endpoint files
//! with their exact diagnostics.

use std::path::Path;
use std::time::Duration;

use citadel_plugin::signature::{
    DEFAULT_TOLERANCE, SignatureError, SignedHeaders, sign, signed_headers, verify,
};
use citadel_plugin::{Endpoint, EntryLanguage, RetryPolicy, codes};

// The reference vector of the Standard Webhooks libraries.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TIMESTAMP: i64 = 1_614_265_330;
const BODY: &[u8] = br#"{"test": 2432232314}"#;
const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
const OTHER: &str = "whsec_c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA==";

fn headers(signature: &str) -> SignedHeaders<'_> {
    SignedHeaders {
        id: MSG_ID,
        timestamp: "1614265330",
        signature,
    }
}

#[test]
fn the_published_vector() {
    assert_eq!(sign(SECRET, MSG_ID, TIMESTAMP, BODY).unwrap(), SIGNATURE);
    assert_eq!(
        verify(
            &[SECRET],
            &headers(SIGNATURE),
            BODY,
            TIMESTAMP,
            DEFAULT_TOLERANCE
        ),
        Ok(())
    );
}

#[test]
fn rotation_accepts_any_listed_signature_and_any_held_secret() {
    let both = signed_headers(&[OTHER, SECRET], MSG_ID, TIMESTAMP, BODY).unwrap();
    assert_eq!(both[0], ("webhook-id", MSG_ID.to_owned()));
    assert_eq!(both[1], ("webhook-timestamp", "1614265330".to_owned()));
    assert!(both[2].1.ends_with(SIGNATURE));
    let h = SignedHeaders::from_pairs(both.iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
    // A receiver holding only the old or only the new secret accepts.
    for held in [&[SECRET][..], &[OTHER], &[OTHER, SECRET]] {
        assert_eq!(verify(held, &h, BODY, TIMESTAMP, DEFAULT_TOLERANCE), Ok(()));
    }
    let multi = format!("v1,Zm9yZ2Vk v2,abc {SIGNATURE}");
    assert_eq!(
        verify(
            &[SECRET],
            &headers(&multi),
            BODY,
            TIMESTAMP,
            DEFAULT_TOLERANCE
        ),
        Ok(())
    );
}

#[test]
fn forged_expired_and_replayed_deliveries() {
    let t = DEFAULT_TOLERANCE;
    // Another body, id or secret.
    assert_eq!(
        verify(
            &[SECRET],
            &headers(SIGNATURE),
            br#"{"test": 2432232315}"#,
            TIMESTAMP,
            t
        ),
        Err(SignatureError::NoMatch)
    );
    let other_id = SignedHeaders {
        id: "msg_other",
        ..headers(SIGNATURE)
    };
    assert_eq!(
        verify(&[SECRET], &other_id, BODY, TIMESTAMP, t),
        Err(SignatureError::NoMatch)
    );
    assert_eq!(
        verify(&[OTHER], &headers(SIGNATURE), BODY, TIMESTAMP, t),
        Err(SignatureError::NoMatch)
    );
    // A signature for another timestamp, moved into the window.
    let moved = SignedHeaders {
        timestamp: "1614265331",
        ..headers(SIGNATURE)
    };
    assert_eq!(
        verify(&[SECRET], &moved, BODY, TIMESTAMP, t),
        Err(SignatureError::NoMatch)
    );
    // Garbage and other schemes.
    for sig in [
        "",
        "v1,",
        "v1,!!!",
        "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    ] {
        assert_eq!(
            verify(&[SECRET], &headers(sig), BODY, TIMESTAMP, t),
            Err(SignatureError::NoMatch),
            "{sig}"
        );
    }
    // Replayed later than the tolerance, or stamped in the future.
    let later = TIMESTAMP + 301;
    assert_eq!(
        verify(&[SECRET], &headers(SIGNATURE), BODY, later, t),
        Err(SignatureError::TooOld)
    );
    assert_eq!(
        verify(&[SECRET], &headers(SIGNATURE), BODY, TIMESTAMP + 300, t),
        Ok(())
    );
    assert_eq!(
        verify(&[SECRET], &headers(SIGNATURE), BODY, TIMESTAMP - 301, t),
        Err(SignatureError::InFuture)
    );
    assert_eq!(
        verify(
            &[SECRET],
            &headers(SIGNATURE),
            BODY,
            later,
            Duration::from_secs(3600)
        ),
        Ok(())
    );
    for ts in ["", "-5", "1614265330.5", "abc", "99999999999999999999"] {
        let h = SignedHeaders {
            timestamp: ts,
            ..headers(SIGNATURE)
        };
        assert_eq!(
            verify(&[SECRET], &h, BODY, TIMESTAMP, t),
            Err(SignatureError::InvalidTimestamp),
            "{ts}"
        );
    }
    assert_eq!(
        verify(&[], &headers(SIGNATURE), BODY, TIMESTAMP, t),
        Err(SignatureError::InvalidSecret)
    );
    assert_eq!(
        verify(&["not-a-secret"], &headers(SIGNATURE), BODY, TIMESTAMP, t),
        Err(SignatureError::InvalidSecret)
    );
    let missing = SignedHeaders::from_pairs([("Webhook-Id", "x"), ("webhook-timestamp", "1")]);
    assert_eq!(
        missing,
        Err(SignatureError::MissingHeader("webhook-signature"))
    );
    assert_eq!(SignatureError::TooOld.code(), "timestamp_too_old");
}

#[test]
fn the_seed_endpoint_and_the_fixture() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/slack-notifier/webhooks/notifications.yaml");
    let text = std::fs::read_to_string(fixture).unwrap();
    let e = Endpoint::parse("notifications.yaml", &text).unwrap();
    assert_eq!(e.on, ["order.paid", "build.completed"]);
    assert_eq!(e.secrets(), ["SLACK_WEBHOOK_URL", "WEBHOOK_SIGNING_KEY"]);
    assert_eq!(e.delivery.headers["X-Source"].to_string(), "citadel");
    let t = e.transform.as_ref().unwrap();
    assert_eq!(
        (t.language, t.entry.as_str(), t.export.as_str()),
        (EntryLanguage::Ts, "transforms/slack.ts", "transform")
    );
    assert_eq!(
        e.retry,
        RetryPolicy::exponential(6, Duration::from_secs(5), Duration::from_secs(36_000))
    );
    let url = e
        .resolve_url(|n| {
            (n == "SLACK_WEBHOOK_URL").then(|| "https://hooks.slack.example.com/T1".to_owned())
        })
        .unwrap();
    assert_eq!(url.host_str(), Some("hooks.slack.example.com"));
    assert!(
        e.resolve_url(|_| Some("file:///etc/passwd".into()))
            .is_err()
    );
    assert!(
        e.resolve_url(|_| None)
            .unwrap_err()
            .contains("SLACK_WEBHOOK_URL")
    );

    // The seed's own file: Python transforms are refused, where they are.
    let seed = "api_version: v1\non: [\"build.completed\", \"auth.user.created\"]\ndelivery:\n  url: \"${SECRET:WEBHOOK_URL}\"\n  headers:\n    X-Source: \"SBH\"\n  signing:\n    alg: \"HMAC-SHA256\"\n    secret: \"${SECRET:WEBHOOK_SIGNING_KEY}\"\ntransform:\n  language: \"python\"\n  entry: \"transforms/build_completed.py#transform\"\nretry:\n  max_attempts: 6\n  backoff: \"exponential\"\n";
    let errs = Endpoint::parse("seed.yaml", seed).unwrap_err();
    let got: Vec<_> = errs.iter().map(|d| (d.code, d.line, d.column)).collect();
    assert_eq!(got, [(codes::UNSUPPORTED_LANGUAGE, Some(11), Some(13))]);
    // Its JSON form reads the same.
    let json = r#"{"api_version": "v1", "on": "order.paid", "delivery": {"url": "https://example.com/hook", "signing": {"secret": "${SECRET:K}"}}}"#;
    let e = Endpoint::parse("e.json", json).unwrap();
    assert_eq!(e.retry, RetryPolicy::default());
    assert_eq!(e.delivery.timeout_ms, 10_000);
}

/// Each endpoint file in `tests/corpus/webhooks/*.yaml` ends with
/// `# expect: CODE LINE:COLUMN` comments (none: it must parse), at the end
/// so they do not move the lines they talk about.
#[test]
fn the_endpoint_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/webhooks");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 15, "{}", files.len());
    let mut failures = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut expect: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .map(str::to_owned)
            .collect();
        let mut got: Vec<String> = match Endpoint::parse(&name, &text) {
            Ok(_) => Vec::new(),
            Err(diags) => diags
                .iter()
                .map(|d| {
                    format!(
                        "{} {}:{}",
                        d.code,
                        d.line.unwrap_or(0),
                        d.column.unwrap_or(0)
                    )
                })
                .collect(),
        };
        expect.sort();
        got.sort();
        if expect != got {
            failures.push(format!("{name}: expected {expect:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_replayed_delivery_is_refused_within_the_window() {
    use citadel_plugin::signature::ReplayWindow;
    let mut window = ReplayWindow::new(DEFAULT_TOLERANCE, 2);
    let h = headers(SIGNATURE);
    let now = TIMESTAMP + 10;
    assert_eq!(verify(&[SECRET], &h, BODY, now, DEFAULT_TOLERANCE), Ok(()));
    assert_eq!(window.admit(&h, now), Ok(()));
    // The same delivery again, even with a valid signature: refused.
    assert_eq!(
        verify(&[SECRET], &h, BODY, now + 1, DEFAULT_TOLERANCE),
        Ok(())
    );
    assert_eq!(window.admit(&h, now + 1), Err(SignatureError::Replayed));
    let second = SignedHeaders { id: "msg_2", ..h };
    assert_eq!(window.admit(&second, now), Ok(()));
    let third = SignedHeaders { id: "msg_3", ..h };
    assert_eq!(window.admit(&third, now), Err(SignatureError::WindowFull));
    // Once the window has passed, old ids are forgotten (and `verify`
    // refuses their timestamps anyway).
    let later = TIMESTAMP + 301;
    assert_eq!(
        verify(&[SECRET], &h, BODY, later, DEFAULT_TOLERANCE),
        Err(SignatureError::TooOld)
    );
    assert_eq!(window.admit(&third, later), Ok(()));
    assert_eq!(window.len(), 1);
}
