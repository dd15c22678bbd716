//! `citadel template list|new`: scaffold a script from a built-in template.

use std::path::PathBuf;

use citadel_scripts::{TEMPLATES, template};
use clap::Subcommand;

use crate::exit;

#[derive(Subcommand)]
pub(crate) enum TemplateCommand {
    /// List the built-in templates.
    List,
    /// Write a template's source to FILE (default NAME.ts); never overwrites.
    New {
        /// event-handler, scheduled-report, webhook-transform or data-query.
        name: String,
        file: Option<PathBuf>,
    },
}

pub(crate) fn template_command(cmd: TemplateCommand) -> u8 {
    match cmd {
        TemplateCommand::List => {
            for t in TEMPLATES {
                println!("{:<18} {}", t.name, t.description);
            }
            exit::OK
        }
        TemplateCommand::New { name, file } => {
            let Some(t) = template(&name) else {
                let names: Vec<&str> = TEMPLATES.iter().map(|t| t.name).collect();
                eprintln!(
                    "citadel: no template `{name}` (one of: {})",
                    names.join(", ")
                );
                return exit::USAGE;
            };
            let file = file.unwrap_or_else(|| PathBuf::from(format!("{}.{}", t.name, t.language)));
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&file)
                .and_then(|mut f| std::io::Write::write_all(&mut f, t.source.as_bytes()));
            match written {
                Ok(()) => {
                    println!("wrote {}", file.display());
                    println!("capabilities to grant when saving it: {}", t.capabilities);
                    exit::OK
                }
                Err(e) => {
                    eprintln!("citadel: cannot create {}: {e}", file.display());
                    exit::USAGE
                }
            }
        }
    }
}
