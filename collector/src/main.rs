//! The `weft` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use weft::registry::Registry;
use weft::service::{load_config, LoadedConfig, Service};
use weft_config::{Kind, ProcessEnv};

/// jemalloc instead of glibc's malloc. glibc keeps the memory the pipeline frees in its
/// arenas (fragmented by longer-lived allocations, so it cannot trim them): after a burst,
/// RSS stayed above the memory_limiter's soft limit with nothing left queued, and Weft
/// refused all data until restarted (integration-tests/tests/overload.rs). jemalloc hands
/// unused pages back to the OS within seconds (`dirty_decay_ms`, 10 s), so the RSS the
/// memory_limiter measures follows what Weft holds.
#[cfg(all(target_os = "linux", not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "weft",
    version,
    about = "Weft: an OpenTelemetry Collector distribution that weaves logs into traces"
)]
struct Cli {
    /// The configuration file (the OpenTelemetry Collector's YAML layout). Without it, Weft
    /// runs its embedded default configuration.
    #[arg(long, short = 'c', global = true)]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the collector (the default).
    Run,
    /// Check a configuration: exit 0 when valid, non-zero listing every problem.
    Validate,
    /// List the components built into this binary, with their stability.
    Components,
}

#[allow(clippy::print_stdout)]
fn main() -> ExitCode {
    let cli = Cli::parse();
    let registry = Registry::builtin();
    match cli.command.unwrap_or(Command::Run) {
        Command::Components => {
            print_components(&registry);
            ExitCode::SUCCESS
        }
        Command::Validate => match read_config(cli.config.as_ref(), &registry) {
            Ok(loaded) => {
                for d in loaded.diagnostics.iter() {
                    eprintln!("{d}");
                }
                if loaded.is_valid() {
                    println!("configuration is valid");
                    ExitCode::SUCCESS
                } else {
                    let n = loaded.diagnostics.errors().count();
                    eprintln!("configuration is invalid: {n} error(s)");
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Run => run(cli.config.as_ref(), &registry),
    }
}

fn read_config(path: Option<&PathBuf>, registry: &Registry) -> Result<LoadedConfig, String> {
    let text = match path {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| format!("cannot read config file {}: {e}", p.display()))?,
        None => weft::DEFAULT_CONFIG.to_string(),
    };
    Ok(load_config(&text, &ProcessEnv, registry))
}

fn run(path: Option<&PathBuf>, registry: &Registry) -> ExitCode {
    let loaded = match read_config(path, registry) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if !loaded.is_valid() {
        for d in loaded.diagnostics.iter() {
            eprintln!("{d}");
        }
        eprintln!("not starting: the configuration has errors (check it with `weft validate --config FILE`)");
        return ExitCode::from(1);
    }
    weft::telemetry::init_logging(&loaded.doc.telemetry.logs());
    for w in loaded.diagnostics.warnings() {
        tracing::warn!(component = "config", "{w}");
    }
    match path {
        Some(p) => {
            tracing::info!(component = "service", config = %p.display(), version = env!("CARGO_PKG_VERSION"), "starting Weft")
        }
        None => tracing::info!(
            component = "service",
            version = env!("CARGO_PKG_VERSION"),
            "starting Weft with its default configuration (no --config given)"
        ),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        let service = Service::build(&loaded, registry)?;
        service.run_until_signal().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(component = "service", error = %format!("{e:#}"), "Weft stopped with an error");
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Every registered component: type, stability, the signals it takes (the one place that
/// says so: descriptions do not repeat them), description.
#[allow(clippy::print_stdout)]
fn print_components(registry: &Registry) {
    let rows: Vec<(Kind, Vec<[String; 4]>)> = Kind::ALL
        .into_iter()
        .map(|kind| {
            let rows = registry
                .infos(kind)
                .into_iter()
                .map(|info| {
                    // A connector links signals: it says which to which.
                    let signals: Vec<String> = match registry.connector(info.type_name) {
                        Some(connector) if kind == Kind::Connector => connector
                            .pairs()
                            .iter()
                            .map(|(from, to)| format!("{from}>{to}"))
                            .collect(),
                        _ => info.signals.iter().map(|s| s.to_string()).collect(),
                    };
                    let signals = if signals.is_empty() {
                        "-".to_string()
                    } else {
                        signals.join(",")
                    };
                    [
                        info.type_name.to_string(),
                        info.stability.to_string(),
                        signals,
                        info.description.to_string(),
                    ]
                })
                .collect();
            (kind, rows)
        })
        .collect();
    let width = |column: usize| {
        rows.iter()
            .flat_map(|(_, r)| r)
            .map(|row| row[column].len())
            .max()
            .unwrap_or(0)
    };
    let (name, stability, signals) = (width(0), width(1), width(2));
    for (kind, rows) in &rows {
        println!("{}:", kind.section());
        for [type_name, stab, sigs, description] in rows {
            println!("  {type_name:<name$} {stab:<stability$} {sigs:<signals$} {description}");
        }
    }
}
