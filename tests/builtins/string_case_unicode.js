// expect: succeeded -
// result: ["STRASSE", "ας", "ǆ", "İ"]
// Case mapping with special and context-sensitive rules.
return ["straße".toUpperCase(), "ΑΣ".toLowerCase(), "ǅ".toLowerCase(), "i̇".toUpperCase().normalize("NFC")];
