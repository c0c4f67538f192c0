//! The `main` of the command-line programs: clap's parsing, and errors as one line with a
//! non-zero exit code.

/// The `main` of a command-line program: parses `C` with clap, runs `run`, and turns an error
/// into one line on stderr (`error: …`) with exit code 1; a bad flag gives one line and exit
/// code 2, `--help` and `--version` print and succeed.
pub fn run_cli<C: clap::Parser, E: std::fmt::Display>(
    run: impl FnOnce(C) -> Result<(), E>,
) -> std::process::ExitCode {
    let cli = match C::try_parse() {
        Ok(cli) => cli,
        Err(error) => return cli_error(error),
    };
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// [`run_cli`] for programs that need to know which flags were given on the command line
/// (`ArgMatches::value_source`): `run` also receives clap's matches.
pub fn run_cli_with_matches<C: clap::Parser, E: std::fmt::Display>(
    run: impl FnOnce(C, clap::ArgMatches) -> Result<(), E>,
) -> std::process::ExitCode {
    let parsed = C::command()
        .try_get_matches()
        .and_then(|matches| C::from_arg_matches(&matches).map(|cli| (cli, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return cli_error(error),
    };
    match run(cli, matches) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Reports a command-line error from clap: help and version go to stdout with success; a bad
/// flag is one line on stderr and exit code 2.
fn cli_error(error: clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            std::process::ExitCode::SUCCESS
        }
        _ => {
            let text = error.render().to_string();
            let first = text.lines().next().unwrap_or("error: invalid arguments");
            eprintln!("{first} (see --help)");
            std::process::ExitCode::from(2)
        }
    }
}
