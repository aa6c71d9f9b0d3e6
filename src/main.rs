//! The `crs-cds` binary: parse the command line, start telemetry, dispatch, map errors to
//! exit codes (0 ok, 1 failure, 2 unusable input).

use std::process::ExitCode;

use clap::Parser;
use crs_cds::cli::{self, Cli, Command};
use crs_cds::config::LogFormat;
use crs_cds::telemetry;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, Command::Serve { .. });
    let result = match cli.command {
        Command::Serve { config, bind, demo } => {
            match cli::settings(config.as_deref(), bind.as_deref()) {
                Ok(mut settings) => {
                    settings.demo = demo;
                    let sub = telemetry::subscriber(
                        settings.log.format,
                        telemetry::DEFAULT_FILTER,
                        std::io::stderr,
                    );
                    if let Err(e) = telemetry::init(sub) {
                        eprintln!("warning: telemetry not initialised: {e}");
                    }
                    cli::serve(settings).await
                }
                Err(e) => Err(e),
            }
        }
        Command::Grade {
            file,
            json,
            at,
            config,
        } => {
            quiet_telemetry();
            cli::grade(&file, json, at.as_deref(), config.as_deref())
        }
        Command::Course {
            file,
            json,
            svg,
            at,
            fhir,
            config,
        } => {
            quiet_telemetry();
            cli::course(
                &file,
                json,
                svg.as_deref(),
                at.as_deref(),
                fhir,
                config.as_deref(),
            )
        }
        Command::Replay {
            dir,
            server,
            bearer,
        } => {
            quiet_telemetry();
            cli::replay(&dir, &server, bearer.as_deref()).await
        }
        Command::Discovery => cli::discovery(),
        Command::Healthcheck { url } => cli::healthcheck(&url).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if serving
                && telemetry::json_requested(std::env::var("CRS_CDS_LOG_FORMAT").ok().as_deref())
            {
                eprintln!("{}", telemetry::json_error_line(&format!("{e:#}")));
            } else {
                eprintln!("error: {e:#}");
            }
            cli::exit_code_for(&e)
        }
    }
}

/// Warnings only, readable, for the one-shot commands.
fn quiet_telemetry() {
    let _ = telemetry::init(telemetry::subscriber(
        LogFormat::Pretty,
        "warn",
        std::io::stderr,
    ));
}
