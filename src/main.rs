use clap::{Parser, Subcommand};
use refract::config::{Config, LogFormat};
use std::path::PathBuf;
use std::process::ExitCode;

// Transforms allocate and free multi-megabyte buffers per request; mimalloc reuses them without
// the page faults glibc's mmap threshold causes, and its small-object path is faster on the hit path.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Refract: an image transformation origin for CDNs, speaking Filestack-style URLs.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the origin server.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
        /// Where originals and the cache live (default ./data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// TOML configuration file; `REFRACT_*` variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run the pipeline on a local file: `refract transform in.jpg 'resize=w:800/output=f:webp' out.webp`.
    Transform {
        input: PathBuf,
        tasks: String,
        output: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { listen, data_dir, config } => serve(listen, data_dir, config),
        Command::Transform { input, tasks, output, config } => transform(&input, &tasks, &output, config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("refract: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(file: Option<PathBuf>) -> Result<Config, String> {
    Config::load(file.as_deref(), std::env::vars())
}

fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,symphonia=error".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}

fn serve(listen: Option<String>, data_dir: Option<PathBuf>, file: Option<PathBuf>) -> Result<(), String> {
    let mut config = load(file)?;
    if let Some(l) = listen {
        config.listen = l;
    }
    if let Some(d) = data_dir {
        config.data_dir = d;
    }
    init_logging(config.log_format);
    actix_web::rt::System::new().block_on(refract::http::serve(config))
}

fn transform(input: &PathBuf, tasks: &str, output: &PathBuf, file: Option<PathBuf>) -> Result<(), String> {
    let config = load(file)?;
    let bytes = std::fs::read(input).map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    let path = format!("/{}/input", tasks.trim_matches('/'));
    let url = refract::url::parse(&path, None).map_err(|e| e.to_string())?;
    let plan = refract::plan::Plan::build(&url).map_err(|e| e.to_string())?;
    let job = refract::pipeline::job::Job::compile(&plan).map_err(|e| e.to_string())?;
    let limits = refract::origin::limits(&config);
    let overlays = refract::pipeline::Overlays::new();
    let auto = refract::pipeline::quality::Auto { target: config.auto_quality_target, accepted: Vec::new() };
    let resources = refract::pipeline::Resources { auto, ..Default::default() };
    let out = refract::pipeline::render(bytes.into(), &job, None, limits, &overlays, &resources)
        .map_err(|e| e.to_string())?;
    let content_type = out.content_type;
    let bytes = out.body.into_vec().map_err(|e| e.to_string())?;
    std::fs::write(output, &bytes).map_err(|e| format!("cannot write {}: {e}", output.display()))?;
    eprintln!("wrote {} ({content_type}, {} bytes)", output.display(), bytes.len());
    Ok(())
}
