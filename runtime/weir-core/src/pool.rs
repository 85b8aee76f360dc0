//! The step pool: the threads every pipeline's processors run on, shared by the process.
//!
//! A processor call is synchronous and may block (a guest call runs to its end), so it cannot
//! run on the async runtime's workers; one OS thread per step, though, costs a stack, a signal
//! stack and their mappings per pipeline, which caps a process at a few thousand pipelines.
//! Instead the engine hands each batch's work to this pool as a job, and awaits its answer.
//!
//! Invariants:
//! - At most `size` workers (the cores, by default) take jobs at a time, so busy pipelines
//!   share the CPU instead of oversubscribing it.
//! - A job that runs longer than [`STUCK`] (a step blocked without a timeout, a long call) does
//!   not hold the others up: its worker is set aside (it ends once that job returns) and a new
//!   worker takes its place. So threads are `size`, plus one per job running that long, plus
//!   the watcher that sees them.
//! - Jobs start in the order they were submitted.
//! - A job that panics answers [`Panicked`]; its worker lives on.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a job may run before its worker is set aside and replaced.
pub const STUCK: Duration = Duration::from_millis(200);
/// How often the watcher looks for stuck workers.
const WATCH: Duration = Duration::from_millis(50);

type Job = Box<dyn FnOnce() + Send>;

static SHARED: OnceLock<StepPool> = OnceLock::new();
static SHARED_SIZE: OnceLock<usize> = OnceLock::new();

/// A job panicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a processor panicked")]
pub struct Panicked;

/// Threads for processor work, shared by pipelines. Cheap to clone.
#[derive(Clone)]
pub struct StepPool {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Mutex<VecDeque<Job>>,
    ready: Condvar,
    /// The workers taking jobs, each with when its current job started.
    workers: Mutex<Vec<Arc<Worker>>>,
    size: usize,
    origin: Instant,
    /// Workers started in all (for names, and for tests).
    started: AtomicUsize,
}

struct Worker {
    /// Nanoseconds since `origin` when its job started, plus one; 0 when idle.
    busy_since: AtomicU64,
    /// Set aside: ends after its current job.
    retired: AtomicBool,
}

impl StepPool {
    /// A pool of `size` workers (at least one). Its workers wait for jobs for as long as the
    /// process lives: a pool is made once (see [`StepPool::shared`]), not per pipeline.
    pub fn new(size: usize) -> Self {
        let pool = StepPool {
            inner: Arc::new(Inner {
                queue: Mutex::new(VecDeque::new()),
                ready: Condvar::new(),
                workers: Mutex::new(Vec::new()),
                size: size.max(1),
                origin: Instant::now(),
                started: AtomicUsize::new(0),
            }),
        };
        pool.top_up();
        let weak = Arc::downgrade(&pool.inner);
        let watcher = std::thread::Builder::new()
            .name("weir-steps-watch".into())
            .spawn(move || loop {
                std::thread::sleep(WATCH);
                let Some(inner) = weak.upgrade() else { return };
                StepPool { inner }.replace_stuck();
            });
        if let Err(e) = watcher {
            // Jobs still run; one stuck job then holds up those behind it.
            tracing::error!(error = %e, "Cannot start the step pool's watcher");
        }
        pool
    }

    /// The process's pool: [`StepPool::size_shared`]'s size, or one worker per core.
    pub fn shared() -> &'static StepPool {
        SHARED.get_or_init(|| {
            let size = SHARED_SIZE
                .get()
                .copied()
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
            StepPool::new(size)
        })
    }

    /// Sets the size of the process's pool; false if it is already running (or sized).
    pub fn size_shared(size: usize) -> bool {
        SHARED.get().is_none() && SHARED_SIZE.set(size.max(1)).is_ok()
    }

    /// Runs `job` on a worker and answers with its result; [`Panicked`] too if the pool has
    /// no worker and cannot start one (the system refuses threads).
    pub async fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, Panicked> {
        if self.inner.lock_workers().is_empty() && !self.top_up() {
            return Err(Panicked);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            let _ = tx.send(result.map_err(|_| Panicked));
        });
        self.inner.lock_queue().push_back(job);
        self.inner.ready.notify_one();
        rx.await.unwrap_or(Err(Panicked))
    }

    /// Workers started since the pool was made (replacements included).
    pub fn workers_started(&self) -> usize {
        self.inner.started.load(Ordering::Relaxed)
    }

    /// Starts a worker; false if the system refused the thread.
    fn spawn_worker(&self) -> bool {
        let worker = Arc::new(Worker {
            busy_since: AtomicU64::new(0),
            retired: AtomicBool::new(false),
        });
        let n = self.inner.started.fetch_add(1, Ordering::Relaxed);
        let inner = self.inner.clone();
        let me = worker.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("weir-steps-{n}"))
            .spawn(move || inner.work(&me));
        match spawned {
            Ok(_) => {
                self.inner.lock_workers().push(worker);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "Cannot start a step pool thread");
                false
            }
        }
    }

    /// Starts workers until `size` take jobs; false if none takes jobs afterwards.
    fn top_up(&self) -> bool {
        let missing = self
            .inner
            .size
            .saturating_sub(self.inner.lock_workers().len());
        for _ in 0..missing {
            if !self.spawn_worker() {
                break;
            }
        }
        !self.inner.lock_workers().is_empty()
    }

    /// Sets aside every worker whose job has run past [`STUCK`], once a worker has started in
    /// its place (a worker is never set aside for nothing: if no thread can be started, the
    /// stuck one stays, and the pool is slower rather than empty).
    fn replace_stuck(&self) {
        let now = self.inner.origin.elapsed().as_nanos() as u64 + 1;
        let stuck = STUCK.as_nanos() as u64;
        let stuck: Vec<Arc<Worker>> = self
            .inner
            .lock_workers()
            .iter()
            .filter(|w| {
                let since = w.busy_since.load(Ordering::Acquire);
                since != 0 && now.saturating_sub(since) > stuck
            })
            .cloned()
            .collect();
        for w in stuck {
            if !self.spawn_worker() {
                break;
            }
            w.retired.store(true, Ordering::Release);
            self.inner
                .lock_workers()
                .retain(|other| !Arc::ptr_eq(other, &w));
        }
        self.top_up();
    }
}

impl Inner {
    fn lock_queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Job>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_workers(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Worker>>> {
        self.workers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn work(&self, me: &Worker) {
        loop {
            let job = {
                let mut queue = self.lock_queue();
                loop {
                    if let Some(job) = queue.pop_front() {
                        break job;
                    }
                    queue = self.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
                }
            };
            let since = self.origin.elapsed().as_nanos() as u64 + 1;
            me.busy_since.store(since, Ordering::Release);
            job();
            me.busy_since.store(0, Ordering::Release);
            if me.retired.load(Ordering::Acquire) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_answer_and_a_panic_is_an_error_not_a_lost_worker() {
        let pool = StepPool::new(1);
        assert_eq!(pool.run(|| 2 + 2).await, Ok(4));
        assert_eq!(pool.run(|| -> u32 { panic!("boom") }).await, Err(Panicked));
        assert_eq!(pool.run(|| "still here").await, Ok("still here"));
        assert_eq!(pool.workers_started(), 1);
    }

    #[tokio::test]
    async fn a_stuck_job_does_not_hold_up_the_others() {
        let pool = StepPool::new(1);
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (running_tx, running) = tokio::sync::oneshot::channel::<()>();
        let stuck = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move || {
                    let _ = running_tx.send(());
                    wait.recv().is_ok()
                })
                .await
            }
        });
        running.await.unwrap();
        // The only worker is blocked; the next job still runs, on the worker that replaces it.
        assert_eq!(pool.run(|| 7).await, Ok(7));
        assert_eq!(pool.workers_started(), 2);
        release.send(()).unwrap();
        assert_eq!(stuck.await.unwrap(), Ok(true));
        // The set-aside worker is gone from the pool: one worker takes jobs again.
        assert_eq!(pool.inner.lock_workers().len(), 1);
    }
}
