//! `breakglass completions SHELL` and `breakglass man`: generated from the
//! same clap types as `--help`, so they list exactly the real commands and flags.

use clap::CommandFactory;

use crate::cli::Cli;

/// Writes the completion script for `shell` to standard output.
pub(crate) fn completions(shell: clap_complete::Shell) {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "breakglass", &mut std::io::stdout());
}

/// Writes the man page (roff) of `breakglass` to standard output.
pub(crate) fn man() -> anyhow::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout().lock())?;
    Ok(())
}
