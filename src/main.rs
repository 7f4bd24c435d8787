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
    /// Inspect or clean a node's derivative cache (the node must be stopped: its index is locked
    /// while it runs). Prints JSON.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
        /// The node's data directory (default: the configured one, ./data).
        #[arg(long, global = true)]
        data_dir: Option<PathBuf>,
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
    /// Exit 0 when a node answers `/healthz` with 200 (Docker's HEALTHCHECK; no curl needed).
    Healthcheck {
        /// The node's health URL.
        #[arg(long, default_value = "http://127.0.0.1:8080/healthz")]
        url: String,
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

#[derive(Subcommand)]
enum CacheAction {
    /// Entries, bytes, expired entries, sources.
    Stats,
    /// Drop every derivative of a stored file (or a source identity).
    Purge { handle: String },
    /// Read every entry and check its checksum; remove the ones that fail.
    Verify,
    /// Remove expired entries, evict to the size budget, collect orphaned files.
    Gc,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { listen, data_dir, config } => serve(listen, data_dir, config),
        Command::Transform { input, tasks, output, config } => transform(&input, &tasks, &output, config),
        Command::Healthcheck { url } => healthcheck(&url),
        Command::Cache { action, data_dir, config } => cache(action, data_dir, config),
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

/// `GET url` over plain HTTP with a short timeout; Ok when the status is 200.
fn healthcheck(url: &str) -> Result<(), String> {
    use std::io::{Read, Write};
    use std::net::ToSocketAddrs;
    let rest = url.strip_prefix("http://").ok_or("healthcheck: only http:// URLs")?;
    let (authority, path) = rest.split_once('/').map(|(a, p)| (a, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("healthcheck: {authority}: {e}"))?
        .next()
        .ok_or("healthcheck: no address")?;
    let timeout = std::time::Duration::from_secs(3);
    let mut conn = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("healthcheck: {e}"))?;
    conn.set_read_timeout(Some(timeout)).ok();
    write!(conn, "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("healthcheck: {e}"))?;
    let mut head = [0u8; 12];
    conn.read_exact(&mut head).map_err(|e| format!("healthcheck: {e}"))?;
    match &head[9..12] {
        b"200" => Ok(()),
        status => Err(format!("healthcheck: {url} answered {}", String::from_utf8_lossy(status))),
    }
}

fn cache(action: CacheAction, data_dir: Option<PathBuf>, file: Option<PathBuf>) -> Result<(), String> {
    let config = load(file)?;
    let dir = data_dir.unwrap_or(config.data_dir);
    if !dir.join("cache").is_dir() {
        return Err(format!("{} holds no cache", dir.display()));
    }
    let cache = refract::cache::Cache::open(&dir, config.cache_max_bytes, 0).map_err(|e| {
        if e.contains("lock") {
            format!("{e}: a node is running on {}; stop it first", dir.display())
        } else {
            e
        }
    })?;
    let report = match action {
        CacheAction::Stats => serde_json::to_value(cache.stats()),
        CacheAction::Verify => serde_json::to_value(cache.verify()),
        CacheAction::Purge { handle } => {
            Ok(serde_json::json!({ "source": handle, "purged": cache.purge_source(&handle) }))
        }
        CacheAction::Gc => {
            let done = cache.housekeep();
            Ok(serde_json::json!({ "expired": done.expired, "evicted": done.evicted, "orphans": done.orphans }))
        }
    };
    cache.flush();
    println!("{}", report.map_err(|e| e.to_string())?);
    Ok(())
}
