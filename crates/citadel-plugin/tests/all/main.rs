//! The crate at its boundaries: hostile archives, a corpus of plugins with
//! their exact diagnostics, the seed's example plugins, webhook endpoint
//! files and Standard Webhooks signatures.

mod archives;
mod bundles;
mod corpus;
mod examples;
mod webhooks;
