//! Redis in Docker through testcontainers (feature `docker`): containers for the conformance
//! suite, like [`crate::SharedServers`] does with processes, and a FROM-scratch image built from
//! the local `redis-server` for machines that reach no image registry.
//!
//! Containers use the host's network: the machines this runs on allow only loopback traffic,
//! so the engine runs without a bridge (`dockerd --bridge=none --iptables=false`) and there is
//! no port publishing. Each server therefore gets a free host port of its own (`--port`) and
//! binds 127.0.0.1 only.
//!
//! ```no_run
//! use busmq_testkit::docker::{DockerServers, resolve_image};
//! let image = resolve_image(None).expect("a Docker engine answers");
//! let servers = DockerServers::start(3, &image.name).expect("containers start");
//! let urls = servers.urls(); // redis://127.0.0.1:<port>, one per container
//! # let _ = urls;
//! // dropping `servers` removes the containers
//! ```
//!
//! The functions are blocking: they run on a runtime of their own (the engine client's
//! connections belong to it), so they may be called from inside or outside another runtime.

use crate::redis::redis_available;
use std::fmt;
use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use testcontainers::core::BuildImageOptions;
use testcontainers::core::client::docker_client_instance;
use testcontainers::runners::{AsyncBuilder, AsyncRunner};
use testcontainers::{ContainerAsync, GenericBuildableImage, GenericImage, ImageExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The image used when none is named and it is present locally.
pub const DEFAULT_IMAGE: &str = "redis:7-alpine";
/// The repository of the image built from the local `redis-server`; the tag is its version.
pub const LOCAL_IMAGE: &str = "busmq/redis-local";
/// The label on every container started here (`docker ps --filter label=busmq.testkit` finds
/// leftovers of a run that was killed with SIGKILL).
pub const LABEL: &str = "busmq.testkit";

/// How long one container may take from creation to answering PING. Generous: the machines are
/// small and shared, and an image may have to be unpacked first.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a container is started again on another port when the free port it was given was
/// taken in the meantime.
const PORT_ATTEMPTS: usize = 10;

/// Why Docker could not be used: no engine, a failed build, a container that did not come up.
/// The text names the image and includes the container log where there is one.
#[derive(Debug)]
pub struct DockerError {
    message: String,
}

impl fmt::Display for DockerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DockerError {}

fn err(message: impl Into<String>) -> DockerError {
    DockerError { message: message.into() }
}

/// Runs `future` on the module's runtime from a thread of its own, so that the caller may be
/// inside another runtime, and so that the engine client's pooled connections (tasks on the
/// runtime that made them) outlive any caller's runtime.
fn block_on<T: Send>(future: impl Future<Output = T> + Send) -> T {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("busmq-docker")
            .enable_all()
            .build()
            .expect("docker runtime")
    });
    std::thread::scope(|s| s.spawn(|| runtime.block_on(future)).join())
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Where to look when no engine answers: the machines here have no systemd to start one.
const NO_ENGINE_HINT: &str = "start one (e.g. `dockerd --bridge=none --iptables=false`, as .ci/run \
                              does) or point DOCKER_HOST at one";

async fn client() -> Result<testcontainers::bollard::Docker, DockerError> {
    docker_client_instance()
        .await
        .map_err(|e| err(format!("no Docker engine to talk to ({e}); {NO_ENGINE_HINT}")))
}

/// The engine's version, or why no engine answers (e.g. no `/var/run/docker.sock`).
pub fn engine_version() -> Result<String, DockerError> {
    block_on(async {
        let version = client()
            .await?
            .version()
            .await
            .map_err(|e| err(format!("no Docker engine answers ({e}); {NO_ENGINE_HINT}")))?;
        Ok(version.version.unwrap_or_else(|| "unknown".into()))
    })
}

/// Whether the engine has `image` (`name:tag`) locally, without pulling it.
pub fn image_present(image: &str) -> Result<bool, DockerError> {
    block_on(async {
        match client().await?.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(testcontainers::bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                ..
            }) => Ok(false),
            Err(e) => Err(err(format!("inspecting image {image}: {e}"))),
        }
    })
}

/// The image to run and how it was chosen, for the report.
#[derive(Debug, Clone)]
pub struct ImageChoice {
    /// `name:tag`.
    pub name: String,
    /// One line on where it came from (named, present locally, built from which binary).
    pub origin: String,
}

/// The image for the containers: `explicit` when given (pulled on first use if missing), else
/// [`DEFAULT_IMAGE`] if the engine has it, else the image [`local_image`] builds or re-uses.
/// Never pulls the default: where no registry is reachable a pull can only fail.
pub fn resolve_image(explicit: Option<&str>) -> Result<ImageChoice, DockerError> {
    engine_version()?;
    if let Some(name) = explicit {
        let origin = if image_present(name)? { "present locally" } else { "to be pulled" };
        return Ok(ImageChoice { name: name.to_string(), origin: format!("as named, {origin}") });
    }
    if image_present(DEFAULT_IMAGE)? {
        return Ok(ImageChoice {
            name: DEFAULT_IMAGE.to_string(),
            origin: "the default, present locally".into(),
        });
    }
    local_image()
}

/// The FROM-scratch image holding the `redis-server` found by [`redis_available`]
/// (`$BUSMQ_REDIS_SERVER` or `PATH`), its shared libraries and the dynamic loader, tagged
/// `busmq/redis-local:<redis version>`. Builds it unless the engine already has that tag.
///
/// The build needs no registry (nothing is pulled for `FROM scratch`), which is what makes
/// the Docker path testable on machines that reach none.
pub fn local_image() -> Result<ImageChoice, DockerError> {
    let binary = redis_available().ok_or_else(|| {
        err(format!(
            "{DEFAULT_IMAGE} is not present locally and there is no redis-server to build \
             {LOCAL_IMAGE} from (put it on PATH or set BUSMQ_REDIS_SERVER)"
        ))
    })?;
    let version = redis_version(&binary)?;
    let name = format!("{LOCAL_IMAGE}:{version}");
    if image_present(&name)? {
        return Ok(ImageChoice {
            name,
            origin: format!("{DEFAULT_IMAGE} is not present; re-using the local image"),
        });
    }
    let files = runtime_files(&binary)?;
    let mut library_dirs: Vec<String> = files
        .iter()
        .filter_map(|(_, target)| Path::new(target).parent())
        .map(|dir| dir.display().to_string())
        .filter(|dir| dir != "/usr/bin")
        .collect();
    library_dirs.sort();
    library_dirs.dedup();
    // The loader finds the libraries in its default directories without help; the path covers
    // a binary whose libraries came from elsewhere (an rpath or LD_LIBRARY_PATH on the host).
    let mut dockerfile = String::from("FROM scratch\nCOPY rootfs/ /\n");
    if !library_dirs.is_empty() {
        dockerfile.push_str(&format!("ENV LD_LIBRARY_PATH={}\n", library_dirs.join(":")));
    }
    dockerfile.push_str("ENTRYPOINT [\"/usr/bin/redis-server\"]\n");
    let mut build = GenericBuildableImage::new(LOCAL_IMAGE, version.as_str())
        .with_dockerfile_string(dockerfile);
    for (source, target) in &files {
        build = build.with_file(source, format!("rootfs{target}"));
    }
    // The built image is named by `name`; the handle testcontainers returns adds nothing.
    let _built = block_on(async {
        build
            .build_image_with(BuildImageOptions::new().with_skip_if_exists(true))
            .await
            .map_err(|e| err(format!("building {name} from {}: {e}", binary.display())))
    })?;
    Ok(ImageChoice {
        origin: format!("{DEFAULT_IMAGE} is not present; built from {}", binary.display()),
        name,
    })
}

/// `7.0.15` from `Redis server v=7.0.15 sha=...`.
fn redis_version(binary: &Path) -> Result<String, DockerError> {
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .map_err(|e| err(format!("cannot run {} --version: {e}", binary.display())))?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace()
        .find_map(|word| word.strip_prefix("v="))
        .map(str::to_string)
        .ok_or_else(|| err(format!("{} --version printed no version: {text}", binary.display())))
}

/// The binary (as `/usr/bin/redis-server`, whatever its host path) and every file `ldd` says
/// it loads, at the paths `ldd` prints, as `(host source, image path)`.
fn runtime_files(binary: &Path) -> Result<Vec<(PathBuf, String)>, DockerError> {
    let mut files = vec![(binary.to_path_buf(), "/usr/bin/redis-server".to_string())];
    let output = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| err(format!("cannot run ldd {}: {e}", binary.display())))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        // A static binary ("not a dynamic executable") needs nothing else.
        return Ok(files);
    }
    for line in text.lines() {
        let line = line.trim();
        if line.contains("=> not found") {
            return Err(err(format!("ldd {}: {line}", binary.display())));
        }
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or the loader's
        // `/lib64/ld-linux-x86-64.so.2 (0x...)`; the vdso has no path and no file.
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            files.push((PathBuf::from(path), path.to_string()));
        }
    }
    Ok(files)
}

/// Running Redis containers, each on a free loopback port of the host. Dropping the set removes
/// the containers (and an interrupted run's containers are removed by testcontainers' watchdog).
pub struct DockerServers {
    image: String,
    ports: Vec<u16>,
    urls: Vec<String>,
    containers: Vec<ContainerAsync<GenericImage>>,
}

impl fmt::Debug for DockerServers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerServers")
            .field("image", &self.image)
            .field("urls", &self.urls)
            .finish_non_exhaustive()
    }
}

impl DockerServers {
    /// Starts `count` containers of `image` and waits until each answers PING. On failure the
    /// containers started so far are removed and the error carries the failing one's log, so
    /// that whoever prints the error shows the server's side.
    pub fn start(count: usize, image: &str) -> Result<DockerServers, DockerError> {
        let mut servers = DockerServers {
            image: image.to_string(),
            ports: Vec::new(),
            urls: Vec::new(),
            containers: Vec::new(),
        };
        for _ in 0..count {
            let (container, port) = block_on(start_one(image))?;
            servers.containers.push(container);
            servers.ports.push(port);
            servers.urls.push(format!("redis://127.0.0.1:{port}"));
        }
        Ok(servers)
    }

    /// The image the containers run.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// `redis://127.0.0.1:<port>`, one per container.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The containers' ids.
    pub fn container_ids(&self) -> Vec<String> {
        self.containers.iter().map(|c| c.id().to_string()).collect()
    }

    /// Every container's log so far, each under a header naming its port, for a report on
    /// failed cases.
    pub fn logs(&self) -> String {
        block_on(async {
            let mut text = String::new();
            for (container, port) in self.containers.iter().zip(&self.ports) {
                text.push_str(&format!("---- {} (port {port}) ----\n", self.image));
                text.push_str(&container_log(container).await);
            }
            text
        })
    }
}

impl Drop for DockerServers {
    #[allow(clippy::print_stderr, reason = "a container that stays behind must be named")]
    fn drop(&mut self) {
        let containers = std::mem::take(&mut self.containers);
        if containers.is_empty() {
            return;
        }
        let failures = block_on(async {
            let mut failures = Vec::new();
            for container in containers {
                let id = container.id().to_string();
                if let Err(e) = container.rm().await {
                    failures.push(format!("{id}: {e}"));
                }
            }
            failures
        });
        for failure in failures {
            eprintln!("busmq-testkit: could not remove container {failure}");
        }
    }
}

/// One container on a free port; retried on another port when the one it got was taken
/// between our probe and the server's bind (nothing reserves it across processes). A container
/// that does not come up is removed, and its log goes into the error (it is gone afterwards).
async fn start_one(image: &str) -> Result<(ContainerAsync<GenericImage>, u16), DockerError> {
    let (name, tag) = split_image(image);
    let mut last = String::new();
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port()?;
        // Both images take plain redis-server options: the local image's entrypoint is
        // redis-server, and the official one's entrypoint script prepends it to arguments
        // that start with `-`.
        let args = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        .map(str::to_string);
        let container = GenericImage::new(name, tag)
            .with_network("host")
            .with_cmd(args)
            .with_label(LABEL, "redis")
            .with_container_name(format!("busmq-redis-{}-{port}", std::process::id()))
            .with_startup_timeout(READY_TIMEOUT)
            .start()
            .await
            .map_err(|e| err(format!("starting a container of {image}: {e}")))?;
        match wait_ready(&container, port).await {
            Ok(()) => return Ok((container, port)),
            Err(Failure::PortTaken(log)) => {
                last = log;
                let _ = container.rm().await;
            }
            Err(Failure::Other(what, log)) => {
                let id = container.id().to_string();
                let _ = container.rm().await;
                return Err(err(format!(
                    "{image} on port {port}: {what}; log of container {id}:\n{log}\n---- end of log ----"
                )));
            }
        }
    }
    Err(err(format!("{image}: no free port after {PORT_ATTEMPTS} attempts; last log:\n{last}")))
}

enum Failure {
    PortTaken(String),
    Other(String, String),
}

/// Ready when PING answers `+PONG` and the container's own log says so: with host networking
/// a stranger that took the port could answer PING too.
async fn wait_ready(container: &ContainerAsync<GenericImage>, port: u16) -> Result<(), Failure> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let log = container_log(container).await;
        if log.contains("Address already in use") {
            return Err(Failure::PortTaken(log));
        }
        let pong = ping(port).await;
        if pong && log.contains("Ready to accept connections") {
            return Ok(());
        }
        if !container.is_running().await.unwrap_or(false) {
            let code = container.exit_code().await.ok().flatten();
            return Err(Failure::Other(format!("the container exited (code {code:?})"), log));
        }
        if Instant::now() >= deadline {
            let what = format!("no PONG within {READY_TIMEOUT:?}");
            return Err(Failure::Other(what, log));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn container_log(container: &ContainerAsync<GenericImage>) -> String {
    let stdout = container.stdout_to_vec().await.unwrap_or_default();
    let stderr = container.stderr_to_vec().await.unwrap_or_default();
    let mut text = String::from_utf8_lossy(&stdout).into_owned();
    if !stderr.is_empty() {
        text.push_str("---- stderr ----\n");
        text.push_str(&String::from_utf8_lossy(&stderr));
    }
    text
}

/// One RESP PING to 127.0.0.1:`port`, answered `+PONG` within a short timeout.
async fn ping(port: u16) -> bool {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(b"*1\r\n$4\r\nPING\r\n").await?;
        let mut answer = [0u8; 7];
        stream.read_exact(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), exchange).await,
        Ok(Ok(answer)) if &answer == b"+PONG\r\n"
    )
}

/// `("redis", "7-alpine")` from `redis:7-alpine`; a registry's `host:port/` prefix is not a tag.
fn split_image(image: &str) -> (&str, &str) {
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (image, "latest"),
    }
}

fn free_port() -> Result<u16, DockerError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| err(format!("cannot bind a loopback port: {e}")))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| err(format!("no local address: {e}")))
}

#[cfg(test)]
mod tests {
    use super::split_image;

    #[test]
    fn image_names_split_into_name_and_tag() {
        assert_eq!(split_image("redis:7-alpine"), ("redis", "7-alpine"));
        assert_eq!(split_image("redis"), ("redis", "latest"));
        assert_eq!(split_image("localhost:5000/redis"), ("localhost:5000/redis", "latest"));
        assert_eq!(split_image("localhost:5000/redis:7"), ("localhost:5000/redis", "7"));
        assert_eq!(split_image("busmq/redis-local:7.0.15"), ("busmq/redis-local", "7.0.15"));
    }
}
