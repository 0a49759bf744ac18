//! The thread pool for `def` handlers that may block (`blocking=True`), and the timing of
//! those that run inline on the engine thread.
//!
//! The pool is bounded and grows on demand: a job finds an idle thread or, below the bound,
//! starts one; threads left idle for a minute exit. A pool that is never used starts no
//! thread. Each job attaches to the interpreter for as long as it runs, so while one handler
//! blocks in a driver call (which releases the GIL) the engine thread and the other pool
//! threads go on.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

const IDLE_EXIT: Duration = Duration::from_secs(60);

/// A bounded pool of threads for blocking handlers.
pub struct Pool {
    max: usize,
    tx: crossbeam_channel::Sender<Job>,
    rx: crossbeam_channel::Receiver<Job>,
    threads: AtomicUsize,
    idle: AtomicUsize,
}

impl Pool {
    pub fn new(max: usize) -> Pool {
        let (tx, rx) = crossbeam_channel::unbounded();
        Pool {
            max: max.max(1),
            tx,
            rx,
            threads: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
        }
    }

    /// Runs `job` on a pool thread; the receiver gets its result (or is dropped if the job
    /// could not be run).
    pub fn run<T: Send + 'static>(
        &'static self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> oneshot::Receiver<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(job());
        });
        if self.tx.send(job).is_ok() && self.idle.load(Ordering::Acquire) == 0 {
            self.grow();
        }
        rx
    }

    fn grow(&'static self) {
        let mut threads = self.threads.load(Ordering::Acquire);
        while threads < self.max {
            match self.threads.compare_exchange(
                threads,
                threads + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    let spawned = std::thread::Builder::new()
                        .name("spikard-blocking".into())
                        .spawn(move || {
                            // One Python thread state for the thread's life, not one per job.
                            pyo3::Python::attach(|py| py.detach(|| self.work()));
                        });
                    if spawned.is_err() {
                        self.threads.fetch_sub(1, Ordering::AcqRel);
                    }
                    return;
                }
                Err(now) => threads = now,
            }
        }
    }

    fn work(&'static self) {
        loop {
            self.idle.fetch_add(1, Ordering::AcqRel);
            let job = self.rx.recv_timeout(IDLE_EXIT);
            self.idle.fetch_sub(1, Ordering::AcqRel);
            match job {
                Ok(job) => job(),
                Err(_) => break,
            }
        }
        self.threads.fetch_sub(1, Ordering::AcqRel);
        // A job may have arrived as this thread gave up.
        if !self.rx.is_empty() && self.idle.load(Ordering::Acquire) == 0 {
            self.grow();
        }
    }

    /// A pool that lives as long as the process (applications are created once).
    pub fn leak(max: usize) -> &'static Pool {
        Box::leak(Box::new(Pool::new(max)))
    }
}

/// Logs a handler that held the engine thread longer than the threshold, at most once per
/// ten seconds per handler.
pub struct SlowLog {
    threshold: Duration,
    /// When the last line was written (see `time`).
    last: AtomicU64,
}

/// `CLOCK_MONOTONIC_COARSE`: the time of the last scheduler tick, read from the vDSO without
/// reading the TSC. Timing every handler call and every event of a stream with it costs a few
/// ns instead of two precise clock reads; its resolution (a tick, 1–4 ms) is far below a
/// threshold meant to catch handlers that hold the thread for a tenth of a second.
fn coarse_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid, writable timespec; the call only fills it.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

fn since_start() -> Duration {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

impl SlowLog {
    pub fn new(threshold: Duration) -> SlowLog {
        SlowLog {
            threshold,
            last: AtomicU64::new(0),
        }
    }

    /// Runs `f`, timing it against the threshold on the coarse clock (see [`coarse_now`]).
    pub fn time<R>(&self, name: &str, f: impl FnOnce() -> R) -> R {
        let started = coarse_now();
        let result = f();
        let took = coarse_now().saturating_sub(started);
        if took >= self.threshold {
            // Seconds since start, plus one: `last` is 0 until the first line.
            let now = since_start().as_secs() + 1;
            let last = self.last.load(Ordering::Relaxed);
            if (last == 0 || now >= last + 10)
                && self
                    .last
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                eprintln!(
                    "spikard: handler {name} held the engine thread for {:.3} s; no other \
                     request of this worker ran meanwhile. A `def` handler that blocks \
                     belongs in the thread pool: declare its route with blocking=True.",
                    took.as_secs_f64()
                );
            }
        }
        result
    }
}
