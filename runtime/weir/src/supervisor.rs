//! The supervisor of a `weir run`: starts the pipelines, reloads them when their files or
//! modules change, and stops the ones whose files go away.
//!
//! A reload reads, validates and builds the new version before it touches the running one; if
//! anything is wrong the old version keeps running and the error (file, line, key) goes to the
//! log and to the pipeline's status. A new version that differs only in its `[[process]]` steps
//! (or in the modules they load) is *swapped*: the batcher hands on its partial batch, and
//! every later batch runs on the new processors, with the source, its checkpoints, the
//! buffers of the sink and the counters untouched. Any other change *restarts* the pipeline:
//! the old version is drained as at shutdown (every record delivered, checkpoints saved) and
//! the new one resumes from those checkpoints, which needs a source that keeps them.
//!
//! Restarts and removals never block the supervisor: the old version drains in the background
//! (its end arrives on the `Ended` channel like any pipeline's), and the new version starts
//! then. A pipeline renamed in its file keeps its state (checkpoints, default error output):
//! the state directory moves to the new name between the two versions.
//!
//! Invariants:
//! - At most one version of a pipeline reads its source at any time.
//! - A pipeline's version goes up by one per successful reload, and only then.
//! - Tenant quotas (pipelines, instances) are checked against every other running pipeline
//!   of the tenant, before anything starts.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use weir_wasm::Host;

use crate::admin::{PipelineHandle, Registry, ReloadOutcome};
use crate::app;
use crate::clock::Clock;
use crate::config::tenants::TenantsFile;
use crate::config::{self, Component, ConfigError, PipelineFile, ProcessConfig, SourceComponent};
use crate::engine::{self, EngineError, PipelineReport, Swap};
use crate::quota::CpuBudget;
use crate::stats::Stats;

/// How long a reload waits for a swap to land before it lets it land in the background.
const SWAP_WAIT: Duration = Duration::from_secs(5);

/// What a supervisor needs from the process that runs it.
pub struct Options {
    /// Pipeline files, and directories of them (`*.toml`).
    pub paths: Vec<PathBuf>,
    pub tenants: TenantsFile,
    pub host: Arc<Host>,
    pub state_dir: PathBuf,
    pub clock: Arc<dyn Clock>,
    /// Cancels every pipeline (they drain).
    pub shutdown: CancellationToken,
    pub registry: Arc<Registry>,
}

/// A pipeline that ended by itself (its source ended, or it failed).
pub struct Ended {
    pub name: String,
    generation: u64,
    pub result: Result<PipelineReport, EngineError>,
}

struct Running {
    file: PipelineFile,
    fingerprint: [u8; 16],
    handle: Arc<PipelineHandle>,
    swaps: mpsc::Sender<Swap>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    generation: u64,
    /// Whether a step keeps state across batches: then a reload restarts, never swaps.
    stateful: bool,
}

/// What a reload did to one pipeline, as the admin API reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Change {
    pub pipeline: String,
    pub file: String,
    /// `started`, `swapped`, `swapping` (queued behind slow batches; the pipeline's status
    /// records it when it lands), `restarted`, `stopped` or `failed`.
    pub action: &'static str,
    pub error: Option<String>,
    pub millis: f64,
}

/// A version being drained in the background, and what comes after it.
struct Draining {
    generation: u64,
    handle: Arc<PipelineHandle>,
    file: PipelineFile,
    noticed: Instant,
    then: Then,
}

enum Then {
    /// The pipeline's file went away.
    Stop,
    /// A new version (same name, or a rename) starts from the state this one leaves.
    Start {
        file: Box<PipelineFile>,
        fingerprint: [u8; 16],
        plan: Box<engine::PipelinePlan>,
        action: &'static str,
    },
}

/// What a pipeline's end meant.
pub enum EndedAs {
    /// The pipeline ended by itself (or at shutdown): for the run's summary.
    Finished(Arc<PipelineHandle>),
    /// An old version drained for a restart, rename or removal; `rescan` if its files changed
    /// again meanwhile (a reload should look at them).
    Drained { rescan: bool },
    /// The end of a version nobody waits for.
    Ignored,
}

/// Why the supervisor could not start its pipelines.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("no pipeline files found in {0:?}")]
    NoFiles(Vec<PathBuf>),
    #[error("two pipelines are named `{0}`; names must be unique")]
    DuplicateName(String),
    #[error("only one pipeline can read stdin")]
    StdinTwice,
    /// A tenant's cap (pipelines, instances); the message names the file, line and key.
    #[error("{0}")]
    Quota(String),
    #[error(transparent)]
    Build(#[from] app::BuildError),
    #[error("building the pipeline panicked: {0}")]
    Panicked(String),
}

// A reload reports failures as text (the admin API's `error`).
impl From<StartError> for String {
    fn from(e: StartError) -> String {
        e.to_string()
    }
}

pub struct Supervisor {
    options: Options,
    /// Running pipelines by name.
    running: BTreeMap<String, Running>,
    /// Old versions draining, by name.
    draining: BTreeMap<String, Draining>,
    budgets: HashMap<String, Arc<CpuBudget>>,
    /// Files whose pipeline ended by itself, with their fingerprint then and the pipeline's
    /// handle: a rescan leaves them alone until they change, and a new run keeps the handle.
    finished: HashMap<PathBuf, ([u8; 16], Arc<PipelineHandle>)>,
    ended_tx: mpsc::UnboundedSender<Ended>,
    generation: u64,
}

impl Supervisor {
    /// A supervisor with nothing running; pipelines that end report on the returned channel.
    pub fn new(options: Options) -> (Self, mpsc::UnboundedReceiver<Ended>) {
        let (ended_tx, ended_rx) = mpsc::unbounded_channel();
        let budgets = options
            .tenants
            .tenant
            .iter()
            .filter_map(|(name, t)| Some((name.clone(), Arc::new(CpuBudget::new(t.cpu?.0)))))
            .collect();
        let supervisor = Supervisor {
            options,
            running: BTreeMap::new(),
            draining: BTreeMap::new(),
            budgets,
            finished: HashMap::new(),
            ended_tx,
            generation: 0,
        };
        (supervisor, ended_rx)
    }

    /// Whether no pipeline is running or draining.
    pub fn is_idle(&self) -> bool {
        self.running.is_empty() && self.draining.is_empty()
    }

    /// The files and directories whose changes matter: the pipeline paths, and every module
    /// a running pipeline loads.
    pub fn watched(&self) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let modules = self
            .running
            .values()
            .flat_map(|r| modules(&r.file))
            .collect();
        (self.options.paths.clone(), modules)
    }

    /// Loads and starts every pipeline; the first that fails to load or build fails the
    /// start (nothing is left running).
    pub async fn start_all(&mut self) -> Result<(), StartError> {
        let paths = config::discover(&self.options.paths)?;
        if paths.is_empty() {
            return Err(StartError::NoFiles(self.options.paths.clone()));
        }
        let mut files = Vec::new();
        for path in &paths {
            files.push(self.load(path)?);
        }
        let mut names: Vec<&str> = files.iter().map(|(f, _)| f.name.as_str()).collect();
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(StartError::DuplicateName(w[0].to_string()));
        }
        if files.iter().filter(|(f, _)| app::reads_stdin(f)).count() > 1 {
            return Err(StartError::StdinTwice);
        }
        for (file, fingerprint) in files {
            let built = match self.check_quota(&file, None) {
                Ok(()) => self.build(&file).await,
                Err(e) => Err(e),
            };
            match built {
                Ok(plan) => self.launch(file, fingerprint, None, plan),
                Err(e) => {
                    self.stop_all().await;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Reads a pipeline file, applies its tenant's caps, and fingerprints it with its modules.
    fn load(&self, path: &Path) -> Result<(PipelineFile, [u8; 16]), ConfigError> {
        let file = self.options.tenants.load_pipeline(path)?;
        let fingerprint = fingerprint(path, &modules(&file));
        Ok((file, fingerprint))
    }

    /// Refuses a pipeline its tenant has no room for; `replacing` is not counted.
    fn check_quota(&self, file: &PipelineFile, replacing: Option<&str>) -> Result<(), StartError> {
        let tenant = file.tenant();
        let Some(quota) = self.options.tenants.get(tenant) else {
            return Ok(());
        };
        let others: Vec<&Running> = self
            .running
            .values()
            .filter(|r| r.file.tenant() == tenant && Some(r.file.name.as_str()) != replacing)
            .collect();
        let at = |key: &str| file.locate(file.lines.pipeline, key);
        if let Some(max) = quota.pipelines {
            if others.len() + 1 > max {
                return Err(StartError::Quota(format!(
                    "{}: tenant `{tenant}` may run {max} pipeline(s) and runs {} already",
                    at("pipeline.tenant"),
                    others.len()
                )));
            }
        }
        if let Some(max) = quota.instances {
            let used: usize = others.iter().map(|r| wasm_instances(&r.file)).sum();
            let wanted = wasm_instances(file);
            if used + wanted > max {
                return Err(StartError::Quota(format!(
                    "{}: this pipeline needs {wanted} Wasm instance(s); tenant `{tenant}` may \
                     hold {max} and its other pipelines hold {used}",
                    at("pipeline.tenant")
                )));
            }
        }
        Ok(())
    }

    /// Starts a built plan.
    fn launch(
        &mut self,
        file: PipelineFile,
        fingerprint: [u8; 16],
        handle: Option<Arc<PipelineHandle>>,
        mut plan: engine::PipelinePlan,
    ) {
        let errors = {
            let e = app::errors_of(&file, &self.options.state_dir);
            if let Some(warning) = app::printing_warning(&file, &e) {
                tracing::warn!(pipeline = %file.name, "{warning}");
            }
            e.describe()
        };
        let handle = handle.unwrap_or_else(|| {
            Arc::new(PipelineHandle::new(
                &file.name,
                config::show(&file.path),
                file.tenant(),
                Arc::new(Stats::default()),
            ))
        });
        let stateful = plan.processors.iter().any(|p| p.stateful());
        let (swaps, swaps_rx) = mpsc::channel(1);
        plan.paused = Some(handle.paused.subscribe());
        plan.swaps = Some(swaps_rx);
        plan.cpu = self.budgets.get(file.tenant()).cloned();
        let stop = self.options.shutdown.child_token();
        self.generation += 1;
        let generation = self.generation;
        let task = {
            let (clock, stats, stop, ended) = (
                self.options.clock.clone(),
                handle.stats.clone(),
                stop.clone(),
                self.ended_tx.clone(),
            );
            let name = file.name.clone();
            tokio::spawn(async move {
                let result = engine::run(plan, clock, stats, stop).await;
                let _ = ended.send(Ended {
                    name,
                    generation,
                    result,
                });
            })
        };
        tracing::info!(
            pipeline = %file.name,
            tenant = %file.tenant(),
            file = %config::show(&file.path),
            output = %file.spec.sink.describe(),
            errors = %errors,
            "Starting pipeline"
        );
        self.options.registry.insert(handle.clone());
        self.running.insert(
            file.name.clone(),
            Running {
                file,
                fingerprint,
                handle,
                swaps,
                stop,
                task,
                generation,
                stateful,
            },
        );
    }

    /// Builds a plan off the async threads: compiling a module can take seconds.
    async fn build(&self, file: &PipelineFile) -> Result<engine::PipelinePlan, StartError> {
        let (file, host, state_dir) = (
            file.clone(),
            self.options.host.clone(),
            self.options.state_dir.clone(),
        );
        let built = tokio::task::spawn_blocking(move || app::build(&file, &host, &state_dir))
            .await
            .map_err(|e| StartError::Panicked(e.to_string()))?;
        Ok(built?)
    }

    /// Handles a pipeline's end: its own (a finite source, a failure), or an old version's
    /// that drained, after which what was waiting for it starts.
    pub fn ended(&mut self, ended: &Ended) -> EndedAs {
        if self
            .draining
            .get(&ended.name)
            .is_some_and(|d| d.generation == ended.generation)
        {
            let d = self.draining.remove(&ended.name).expect("checked");
            return self.drained(d, ended);
        }
        let Some(current) = self.running.get(&ended.name) else {
            return EndedAs::Ignored;
        };
        if current.generation != ended.generation {
            return EndedAs::Ignored;
        }
        let running = self.running.remove(&ended.name).expect("checked");
        self.finished.insert(
            running.file.path.clone(),
            (running.fingerprint, running.handle.clone()),
        );
        running
            .handle
            .finished(ended.result.as_ref().err().map(|e| e.to_string()));
        EndedAs::Finished(running.handle)
    }

    /// An old version finished draining: stop for good, or start what waited for it.
    fn drained(&mut self, d: Draining, ended: &Ended) -> EndedAs {
        if let Err(e) = &ended.result {
            tracing::warn!(pipeline = %ended.name, error = %e, "The old version ended with an error while draining");
        }
        match d.then {
            Then::Stop => {
                d.handle.finished(None);
                self.options.registry.remove(&ended.name);
                EndedAs::Drained { rescan: false }
            }
            Then::Start { .. } if self.options.shutdown.is_cancelled() => {
                d.handle.finished(None);
                EndedAs::Drained { rescan: false }
            }
            Then::Start {
                file,
                fingerprint,
                plan,
                action,
            } => {
                if file.name != d.file.name {
                    self.options.registry.remove(&d.file.name);
                    move_state(&self.options.state_dir, &d.file.name, &file.name);
                }
                let rescan = self::fingerprint(&file.path, &modules(&file)) != fingerprint;
                let handle = (file.name == d.file.name).then_some(d.handle);
                if let Some(h) = &handle {
                    self.note(h, &file, action, None, d.noticed);
                }
                tracing::info!(pipeline = %file.name, action, millis = format!("{:.1}", d.noticed.elapsed().as_secs_f64() * 1e3), "Reloaded");
                self.launch(*file, fingerprint, handle, *plan);
                EndedAs::Drained { rescan }
            }
        }
    }

    /// Stops a running version in the background; `then` runs once it drained.
    fn drain(&mut self, name: &str, noticed: Instant, then: Then) {
        let running = self.running.remove(name).expect("a running pipeline");
        running.stop.cancel();
        self.draining.insert(
            name.to_string(),
            Draining {
                generation: running.generation,
                handle: running.handle,
                file: running.file,
                noticed,
                then,
            },
        );
    }

    /// Rescans every pipeline file and module (`only`: rebuilds that pipeline even if nothing
    /// changed) and applies what changed.
    pub async fn reload(&mut self, only: Option<&str>) -> Vec<Change> {
        let noticed = Instant::now();
        let mut changes = Vec::new();
        let paths = match config::discover(&self.options.paths) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "Reload: cannot list the pipeline files; nothing changed");
                return vec![Change {
                    pipeline: String::new(),
                    file: String::new(),
                    action: "failed",
                    error: Some(e.to_string()),
                    millis: 0.0,
                }];
            }
        };
        // Which running pipeline each file holds now, by path (a file may rename its pipeline).
        let by_path: HashMap<PathBuf, String> = self
            .running
            .iter()
            .map(|(name, r)| (r.file.path.clone(), name.clone()))
            .collect();
        // `only` names a running pipeline or one that ended by itself.
        let target = only.map(|o| {
            self.running
                .get(o)
                .map(|r| r.file.path.clone())
                .or_else(|| {
                    self.finished
                        .iter()
                        .find(|(_, (_, h))| h.name == o)
                        .map(|(p, _)| p.clone())
                })
        });
        let mut seen = Vec::new();
        // Files of versions still draining wait for them: a reload after the drain looks again.
        let busy: HashMap<PathBuf, String> = self
            .draining
            .iter()
            .map(|(name, d)| (d.file.path.clone(), name.clone()))
            .collect();
        for path in &paths {
            if let Some(name) = busy.get(path) {
                seen.push(name.clone());
                continue;
            }
            let old = by_path.get(path).cloned();
            if target.as_ref().is_some_and(|t| t.as_ref() != Some(path)) {
                seen.extend(old);
                continue;
            }
            let forced = target.is_some();
            let loaded = self.load(path);
            let change = match (old, loaded) {
                (Some(name), Err(e)) => {
                    seen.push(name.clone());
                    self.failed(&name, e.to_string(), noticed)
                }
                (None, Err(e)) => {
                    tracing::error!(file = %config::show(path), error = %e, "Reload: new pipeline file is invalid; not started");
                    Some(Change {
                        pipeline: String::new(),
                        file: config::show(path),
                        action: "failed",
                        error: Some(e.to_string()),
                        millis: noticed.elapsed().as_secs_f64() * 1e3,
                    })
                }
                (Some(name), Ok((file, fp))) if file.name == name => {
                    seen.push(name.clone());
                    if !forced && self.running[&name].fingerprint == fp {
                        self.unchanged(&name, noticed);
                        None
                    } else {
                        Some(self.replace(file, fp, noticed).await)
                    }
                }
                // The file of a running pipeline moved (same name, its old path is gone): a
                // new version of that pipeline.
                (None, Ok((file, fp)))
                    if self
                        .running
                        .get(&file.name)
                        .is_some_and(|r| !paths.contains(&r.file.path)) =>
                {
                    seen.push(file.name.clone());
                    Some(self.replace(file, fp, noticed).await)
                }
                (None, Ok((_, fp)))
                    if !forced && self.finished.get(path).is_some_and(|(f, _)| *f == fp) =>
                {
                    None
                }
                (old, Ok((file, fp))) => {
                    // A new file, or one that renamed its pipeline (the old name stops once
                    // the new version is built, so two versions never read one source).
                    seen.push(file.name.clone());
                    let (added, stopped) = self.add(file, fp, noticed, old).await;
                    changes.extend(stopped);
                    Some(added)
                }
            };
            changes.extend(change);
        }
        if only.is_none() {
            let gone: Vec<String> = self
                .running
                .keys()
                .filter(|n| !seen.contains(n))
                .cloned()
                .collect();
            for name in gone {
                changes.push(self.remove(&name, noticed));
            }
        }
        changes
    }

    /// The files are back to what runs: a failure reported earlier no longer holds.
    fn unchanged(&self, name: &str, noticed: Instant) {
        let running = &self.running[name];
        let failed = running
            .handle
            .status()
            .last_reload
            .is_some_and(|r| r.error.is_some());
        if failed {
            tracing::info!(pipeline = %name, "The files are back to the running version");
            self.note(&running.handle, &running.file, "unchanged", None, noticed);
        }
    }

    /// Records a reload's outcome in the pipeline's status; returns its duration in ms.
    fn note(
        &self,
        handle: &PipelineHandle,
        file: &PipelineFile,
        action: &'static str,
        error: Option<String>,
        noticed: Instant,
    ) -> f64 {
        record(handle, &*self.options.clock, file, action, error, noticed)
    }

    fn failed(&mut self, name: &str, error: String, noticed: Instant) -> Option<Change> {
        let running = self.running.get(name)?;
        tracing::error!(pipeline = %name, error = %error, "Reload failed; the running version continues");
        let millis = self.note(
            &running.handle,
            &running.file,
            "failed",
            Some(error.clone()),
            noticed,
        );
        Some(Change {
            pipeline: name.to_string(),
            file: config::show(&running.file.path),
            action: "failed",
            error: Some(error),
            millis,
        })
    }

    /// Starts a pipeline from a new file, or from a file that renamed its pipeline (`replacing`
    /// its old name, stopped only once the new one is built). A pipeline that ended by itself
    /// keeps its handle (version, counters, pause switch). Returns the change, and the stop of
    /// the replaced pipeline.
    async fn add(
        &mut self,
        file: PipelineFile,
        fp: [u8; 16],
        noticed: Instant,
        replacing: Option<String>,
    ) -> (Change, Option<Change>) {
        let (name, shown, path) = (
            file.name.clone(),
            config::show(&file.path),
            file.path.clone(),
        );
        let mut stopped = None;
        let mut action = "started";
        // A name is taken while it runs, drains, or waits for a renamed pipeline to drain.
        let waiting = self.draining.values().any(|d| match &d.then {
            Then::Start { file, .. } => file.name == name,
            Then::Stop => false,
        });
        let result = if self.running.contains_key(&name)
            || self.draining.contains_key(&name)
            || waiting
        {
            Err(format!(
                "{}: a running pipeline is already named `{name}`",
                file.locate(file.lines.pipeline, "pipeline.name")
            ))
        } else if app::reads_stdin(&file) {
            Err(format!(
                "{shown}: a pipeline reading stdin can only be started with weir"
            ))
        } else {
            match self.check_quota(&file, replacing.as_deref()) {
                Err(e) => Err(e.to_string()),
                Ok(()) => match self.build(&file).await {
                    Err(e) => Err(e.to_string()),
                    Ok(plan) => {
                        match &replacing {
                            // A rename: the new name starts once the old drained, from its
                            // state (moved to the new name).
                            Some(old) => {
                                tracing::info!(from = %old, to = %name, "Pipeline renamed: its state moves to the new name once the old version drained");
                                stopped = Some(Change {
                                    pipeline: old.clone(),
                                    file: shown.clone(),
                                    action: "stopping",
                                    error: None,
                                    millis: noticed.elapsed().as_secs_f64() * 1e3,
                                });
                                action = "starting";
                                self.drain(
                                    old,
                                    noticed,
                                    Then::Start {
                                        file: Box::new(file),
                                        fingerprint: fp,
                                        plan: Box::new(plan),
                                        action: "started",
                                    },
                                );
                            }
                            None => {
                                let handle = self
                                    .finished
                                    .remove(&path)
                                    .map(|(_, h)| h)
                                    .filter(|h| h.name == name);
                                if let Some(h) = &handle {
                                    self.note(h, &file, "started", None, noticed);
                                }
                                self.launch(file, fp, handle, plan);
                            }
                        }
                        Ok(())
                    }
                },
            }
        };
        if let Err(e) = &result {
            tracing::error!(file = %shown, error = %e, "Reload: pipeline not started");
        }
        let change = Change {
            pipeline: name,
            file: shown,
            action: if result.is_ok() { action } else { "failed" },
            error: result.err(),
            millis: noticed.elapsed().as_secs_f64() * 1e3,
        };
        (change, stopped)
    }

    /// A pipeline whose file went away drains in the background and stops.
    fn remove(&mut self, name: &str, noticed: Instant) -> Change {
        tracing::info!(pipeline = %name, "Pipeline file removed: draining the pipeline");
        let file = config::show(&self.running[name].file.path);
        self.drain(name, noticed, Then::Stop);
        Change {
            pipeline: name.to_string(),
            file,
            action: "stopping",
            error: None,
            millis: noticed.elapsed().as_secs_f64() * 1e3,
        }
    }

    /// Applies a new version of a running pipeline: a swap if only its steps changed and none
    /// of the old or new steps keeps state, else a restart. On any error the old version keeps
    /// running.
    async fn replace(&mut self, file: PipelineFile, fp: [u8; 16], noticed: Instant) -> Change {
        let name = file.name.clone();
        let old = &self.running[&name];
        // A stage holding state is never swapped: the swap would drop what it holds.
        let swap = restart_key(&old.file) == restart_key(&file) && !old.stateful;
        let swapped = if swap {
            self.swap(&file, noticed).await
        } else {
            Ok(None)
        };
        let swapped = match swapped {
            Ok(Some(action)) => Ok(action),
            Ok(None) => {
                return match self.restart(&file, fp, noticed).await {
                    Ok(()) => Change {
                        pipeline: name,
                        file: config::show(&file.path),
                        action: "restarting",
                        error: None,
                        millis: noticed.elapsed().as_secs_f64() * 1e3,
                    },
                    Err(e) => self.failed(&name, e, noticed).expect("still running"),
                };
            }
            Err(e) => Err(e),
        };
        match swapped {
            Ok(action) => {
                let running = self.running.get_mut(&name).expect("still running");
                running.fingerprint = fp;
                running.file = file;
                let running = &self.running[&name];
                let millis = if action == "swapping" {
                    noticed.elapsed().as_secs_f64() * 1e3
                } else {
                    self.note(&running.handle, &running.file, action, None, noticed)
                };
                tracing::info!(pipeline = %name, action, version = running.handle.status().version, millis = format!("{millis:.1}"), "Reloaded");
                Change {
                    pipeline: name,
                    file: config::show(&running.file.path),
                    action,
                    error: None,
                    millis,
                }
            }
            Err(e) => self.failed(&name, e, noticed).expect("still running"),
        }
    }

    /// Starts the new processors, then hands them to the running pipeline.
    /// `None` when a new step keeps state: the pipeline must restart instead.
    async fn swap(
        &mut self,
        file: &PipelineFile,
        noticed: Instant,
    ) -> Result<Option<&'static str>, String> {
        self.check_quota(file, Some(&file.name))?;
        let (built, host) = (file.clone(), self.options.host.clone());
        let processors = tokio::task::spawn_blocking(move || app::processors(&built, &host))
            .await
            .map_err(|e| format!("building the steps panicked: {e}"))?
            .map_err(|e| e.to_string())?;
        if processors.iter().any(|p| p.stateful()) {
            return Ok(None);
        }
        let running = &self.running[&file.name];
        let swaps = running.swaps.clone();
        let mut delivery = Box::pin(async move {
            let (done, landed) = tokio::sync::oneshot::channel();
            swaps
                .send(Swap { processors, done })
                .await
                .map_err(|_| "the pipeline is ending; nothing to swap".to_string())?;
            landed
                .await
                .map_err(|_| "the pipeline ended before the swap landed".to_string())
        });
        match tokio::time::timeout(SWAP_WAIT, &mut delivery).await {
            Ok(landed) => landed.map(|()| Some("swapped")),
            Err(_) => {
                // Queued behind slow batches: it lands at their end. Other reloads and
                // signals are not held up; the status records the swap when it lands.
                let (handle, clock) = (running.handle.clone(), self.options.clock.clone());
                let file = file.clone();
                tokio::spawn(async move {
                    let (action, error) = match delivery.await {
                        Ok(()) => ("swapped", None),
                        Err(e) => ("failed", Some(e)),
                    };
                    record(&handle, &*clock, &file, action, error, noticed);
                });
                Ok(Some("swapping"))
            }
        }
    }

    /// Drains the running version in the background; the new one starts from its checkpoints
    /// once it drained.
    async fn restart(
        &mut self,
        file: &PipelineFile,
        fp: [u8; 16],
        noticed: Instant,
    ) -> Result<(), String> {
        let old = &self.running[&file.name];
        if let Some(why) = old.file.spec.source.not_restartable() {
            return Err(format!(
                "{}: this change restarts the pipeline, and {why}; only its [[process]] steps \
                 can change while it runs (restart weir to apply it)",
                config::show(&file.path)
            ));
        }
        self.check_quota(file, Some(&file.name))?;
        // Everything that can fail is checked before the old version stops: the new plan is
        // built (modules started) first; its source starts only once the old one drained.
        let plan = self.build(file).await?;
        self.drain(
            &file.name,
            noticed,
            Then::Start {
                file: Box::new(file.clone()),
                fingerprint: fp,
                plan: Box::new(plan),
                action: "restarted",
            },
        );
        Ok(())
    }

    /// Drains every pipeline and waits for them (a start that failed, a benchmark's end).
    pub async fn stop_all(&mut self) {
        let all = std::mem::take(&mut self.running);
        for running in all.values() {
            running.stop.cancel();
        }
        for (_, running) in all {
            let _ = running.task.await;
        }
    }
}

/// Moves a renamed pipeline's state directory to its new name, unless the new name has state
/// of its own (then that is used, and the old state is left where it is, with a warning).
fn move_state(state_dir: &Path, from: &str, to: &str) {
    let (old, new) = (
        crate::checkpoint::LocalStore::pipeline_dir(state_dir, from),
        crate::checkpoint::LocalStore::pipeline_dir(state_dir, to),
    );
    if !old.exists() {
        return;
    }
    if new.exists() {
        tracing::warn!(from = %from, to = %to, kept = %old.display(), used = %new.display(), "Pipeline renamed, but the new name already has state: that state is used, and the old name's is left in place");
        return;
    }
    let moved =
        std::fs::rename(&old, &new).and_then(|()| std::fs::File::open(state_dir)?.sync_all());
    match moved {
        Ok(()) => {
            tracing::info!(from = %from, to = %to, state = %new.display(), "Pipeline renamed: its checkpoints and error output moved to the new name")
        }
        Err(e) => {
            tracing::error!(from = %from, to = %to, error = %e, "Pipeline renamed, and its state could not move: the new name starts over")
        }
    }
}

/// Records a reload's outcome in the pipeline's status; returns its duration in ms.
fn record(
    handle: &PipelineHandle,
    clock: &dyn Clock,
    file: &PipelineFile,
    action: &'static str,
    error: Option<String>,
    noticed: Instant,
) -> f64 {
    let millis = noticed.elapsed().as_secs_f64() * 1e3;
    let outcome = ReloadOutcome {
        action,
        error,
        millis,
        at_ms: clock.now_ms(),
    };
    handle.reloaded(outcome, file.tenant(), &config::show(&file.path));
    millis
}

/// The modules a pipeline loads, and the files its SQL steps read.
/// The Wasm instances a pipeline holds: one per wasm step, one per module of a sql step's
/// `udfs`.
fn wasm_instances(file: &PipelineFile) -> usize {
    file.spec
        .process
        .iter()
        .map(|p| match p {
            ProcessConfig::Wasm(_) => 1,
            ProcessConfig::Sql(s) => s.udfs.len(),
        })
        .sum()
}

fn modules(file: &PipelineFile) -> Vec<PathBuf> {
    file.spec
        .process
        .iter()
        .flat_map(|p| match p {
            ProcessConfig::Wasm(w) => vec![w.module.clone()],
            ProcessConfig::Sql(s) => s.files(),
        })
        .collect()
}

/// Digest of a pipeline file and its modules' bytes: any edit changes it. A file that cannot be
/// read hashes as its error, so a module that comes back unchanged counts as unchanged.
fn fingerprint(path: &Path, modules: &[PathBuf]) -> [u8; 16] {
    let mut hasher = Md5::new();
    for p in std::iter::once(path).chain(modules.iter().map(PathBuf::as_path)) {
        hasher.update(p.as_os_str().as_encoded_bytes());
        match std::fs::read(p) {
            Ok(bytes) => hasher.update(&bytes),
            Err(e) => hasher.update(e.to_string().as_bytes()),
        }
    }
    hasher.finalize().into()
}

/// Everything about a pipeline that a swap cannot change.
fn restart_key(file: &PipelineFile) -> String {
    let s = &file.spec;
    format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        s.source,
        s.sink,
        s.errors,
        s.backup,
        s.pipeline.batch,
        file.tenant(),
    )
}

/// Debounces file-system events: waits until `quiet` has passed with no new event.
pub async fn debounce(events: &mut mpsc::UnboundedReceiver<()>, quiet: Duration) {
    loop {
        match tokio::time::timeout(quiet, events.recv()).await {
            Ok(Some(())) => continue,
            _ => return,
        }
    }
}

/// Watches pipeline files and modules, and reports relevant changes on a channel. Editors and
/// `cp` replace files in several steps, so directories are watched (not the files), and the
/// receiver is expected to [`debounce`].
pub struct Watcher {
    inner: notify::RecommendedWatcher,
    dirs: std::collections::HashSet<PathBuf>,
    interest: Arc<std::sync::Mutex<Interest>>,
}

#[derive(Default)]
struct Interest {
    /// Directories whose `*.toml` files are pipelines.
    toml_dirs: std::collections::HashSet<PathBuf>,
    /// Single files: pipeline files named on the command line, and modules.
    files: std::collections::HashSet<PathBuf>,
}

/// A path as the watcher compares it: its directory resolved (symlinks, `..`), its name kept,
/// so that a file that was just removed still compares equal.
fn watch_key(path: &Path) -> PathBuf {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    match path.file_name() {
        Some(name) => dir.join(name),
        None => dir,
    }
}

impl Watcher {
    pub fn new(tx: mpsc::UnboundedSender<()>) -> Result<Self, notify::Error> {
        use notify::event::{EventKind, ModifyKind};
        let interest = Arc::new(std::sync::Mutex::new(Interest::default()));
        let seen = interest.clone();
        let inner = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            // Reads (ours included) and metadata changes are not edits.
            if matches!(
                event.kind,
                EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_))
            ) {
                return;
            }
            let interest = seen.lock().unwrap_or_else(|e| e.into_inner());
            let relevant = event.paths.iter().any(|p| {
                let key = watch_key(p);
                interest.files.contains(&key)
                    || (key.extension().is_some_and(|x| x == "toml")
                        && key.parent().is_some_and(|d| interest.toml_dirs.contains(d)))
            });
            if relevant {
                let _ = tx.send(());
            }
        })?;
        Ok(Watcher {
            inner,
            dirs: Default::default(),
            interest,
        })
    }

    /// Watches `paths` (pipeline files and directories) and `modules`, and stops caring about
    /// files no longer listed. Directories already watched stay watched.
    pub fn update(&mut self, paths: &[PathBuf], modules: &[PathBuf]) {
        use notify::Watcher as _;
        let mut interest = Interest::default();
        let mut dirs = Vec::new();
        for p in paths {
            if p.is_dir() {
                let dir = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
                interest.toml_dirs.insert(dir.clone());
                dirs.push(dir);
            } else {
                let key = watch_key(p);
                dirs.extend(key.parent().map(Path::to_path_buf));
                interest.files.insert(key);
            }
        }
        for m in modules {
            let key = watch_key(m);
            dirs.extend(key.parent().map(Path::to_path_buf));
            interest.files.insert(key);
        }
        *self.interest.lock().unwrap_or_else(|e| e.into_inner()) = interest;
        for dir in dirs {
            if self.dirs.contains(&dir) {
                continue;
            }
            match self.inner.watch(&dir, notify::RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.dirs.insert(dir);
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "Cannot watch for changes")
                }
            }
        }
    }
}
