//! What the end-to-end tests share: test peers started on 127.0.0.1 and killed when dropped.
#![allow(dead_code)]

pub mod kinesis;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A peer process, killed when the test ends however it ends.
pub struct Peer(pub Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_port(port: u16, what: &str) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what} did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// moto server: S3, Firehose, DynamoDB.
pub fn moto() -> (Peer, String) {
    let bin = root().join(".venv/bin/moto_server");
    assert!(
        bin.exists(),
        "moto is missing: run `.venv/bin/pip install 'moto[server]'` (scripts/test does)"
    );
    let port = free_port();
    let peer = Peer(
        Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server runs"),
    );
    wait_port(port, "moto_server");
    (peer, format!("http://127.0.0.1:{port}"))
}

/// Polls `done` every 50 ms until it holds; fails the test after 60 s with `what` it waited for.
pub fn eventually(what: impl Fn() -> String, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "waited for {}",
            what()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A `weir` process, killed if the test ends before stopping it.
pub struct Running(Option<Child>);

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.0.as_ref().expect("running")
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        self.0.as_mut().expect("running")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub trait Start {
    fn start(&mut self) -> Running;
}

impl Start for Command {
    fn start(&mut self) -> Running {
        Running(Some(self.spawn().expect("weir starts")))
    }
}

pub fn stop(mut running: Running) -> String {
    let child = running.0.take().expect("running");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

/// The admin token the tests run `weir` with.
pub const ADMIN_TOKEN: &str = "weir-test-admin-token-0123456789";

/// A file holding [`ADMIN_TOKEN`], for `--admin-token-file`.
pub fn admin_token_file() -> PathBuf {
    let path = std::env::temp_dir().join(format!("weir-test-admin-token-{}", std::process::id()));
    if !path.exists() {
        std::fs::write(&path, ADMIN_TOKEN).unwrap();
    }
    path
}

/// `--admin ADDR --admin-token-file FILE`.
pub fn admin_args(addr: &str) -> Vec<String> {
    vec![
        "--admin".into(),
        addr.into(),
        "--admin-token-file".into(),
        admin_token_file().display().to_string(),
    ]
}

/// One request to weir's admin API, as a script (curl) sends it: the token and a JSON
/// content type on POSTs. The status code and the body.
pub fn admin(addr: &str, method: &str, path: &str) -> (u16, String) {
    let post = if method == "POST" {
        format!("Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\n")
    } else {
        String::new()
    };
    admin_raw(addr, &format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{post}Content-Length: 0\r\nConnection: close\r\n\r\n"))
}

/// A request to the admin API exactly as given; the status code and the body.
pub fn admin_raw(addr: &str, request: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let code = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.to_string();
    (code, body)
}

/// Every file under `dir`, sorted.
pub fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// Appends the JSON lines `{"n":from}` .. `{"n":to-1}` to `path` (made if missing).
pub fn append_numbered(path: &std::path::Path, from: u64, to: u64) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for n in from..to {
        writeln!(f, r#"{{"n":{n}}}"#).unwrap();
    }
}

/// The `weir` binary, with the shared compile cache and warnings only.
pub fn weir() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    let cache = std::env::var_os("WEIR_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("weir-e2e-cache"));
    cmd.env("WEIR_CACHE_DIR", cache).env("RUST_LOG", "warn");
    cmd
}

/// Runs `cmd`; panics with its output unless it succeeds.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "weir failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every object under `dir` (not descending into `skip`), in the order they were written
/// (object names only order by the second), decompressed if gzip.
pub fn objects(dir: &Path, skip: Option<&str>) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                if skip.is_some_and(|s| p.file_name().unwrap() == s) {
                    continue;
                }
                stack.push(p);
            } else {
                // A sink's temporary file may be renamed between the listing and the read.
                let bytes = match std::fs::read(&p) {
                    Ok(bytes) => bytes,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => panic!("{}: {e}", p.display()),
                };
                let text = if p.extension().is_some_and(|x| x == "gz") {
                    let mut s = String::new();
                    flate2::read::MultiGzDecoder::new(&bytes[..])
                        .read_to_string(&mut s)
                        .unwrap();
                    s
                } else {
                    String::from_utf8(bytes).unwrap()
                };
                let written = std::fs::metadata(&p).unwrap().modified().unwrap();
                found.push((written, p, text));
            }
        }
    }
    found.sort();
    found.into_iter().map(|(_, p, t)| (p, t)).collect()
}

/// Every line of `objects`, in order.
pub fn lines(objects: &[(PathBuf, String)]) -> Vec<String> {
    objects
        .iter()
        .flat_map(|(_, t)| t.lines().map(str::to_string))
        .collect()
}

/// An S3 client for moto server at `endpoint`.
pub async fn s3(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "weir-tests",
        ))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}
