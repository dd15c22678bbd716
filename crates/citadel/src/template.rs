//! `citadel template list|new`: scaffold a script from a built-in template.

use std::path::PathBuf;

use citadel_scripts::{TEMPLATES, template};
use clap::Subcommand;

use crate::{CliError, ResultExt};

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

pub(crate) fn template_command(cmd: TemplateCommand) -> Result<(), CliError> {
    match cmd {
        TemplateCommand::List => {
            for t in TEMPLATES {
                println!("{:<18} {}", t.name, t.description);
            }
            Ok(())
        }
        TemplateCommand::New { name, file } => {
            let Some(t) = template(&name) else {
                let names: Vec<&str> = TEMPLATES.iter().map(|t| t.name).collect();
                return Err(CliError::usage(format!(
                    "no template `{name}` (one of: {})",
                    names.join(", ")
                )));
            };
            let file = file.unwrap_or_else(|| PathBuf::from(format!("{}.{}", t.name, t.language)));
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&file)
                .and_then(|mut f| std::io::Write::write_all(&mut f, t.source.as_bytes()));
            written.usage(format!("cannot create {}", file.display()))?;
            println!("wrote {}", file.display());
            println!("capabilities to grant when saving it: {}", t.capabilities);
            Ok(())
        }
    }
}
