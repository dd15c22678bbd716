//! The built-in templates analyse clean and their grants validate. Checked
//! here, where the analyzer and the script rules meet, so `citadel-scripts`
//! itself builds without oxc.

use citadel_analyzer::Language;
use citadel_scripts::{CapabilitySpec, TEMPLATES, template};

#[test]
fn every_template_is_clean_and_its_grant_valid() {
    for t in TEMPLATES {
        let language: Language = t.language.parse().unwrap();
        let prepared = citadel_analyzer::prepare(t.source, language);
        assert_eq!(prepared.diagnostics, vec![], "{}", t.name);
        let spec: CapabilitySpec = serde_json::from_str(t.capabilities).unwrap();
        assert_eq!(spec.validate(), Ok(()), "{}", t.name);
    }
    assert_eq!(template("data-query").map(|t| t.language), Some("ts"));
    assert!(template("nope").is_none());
}
