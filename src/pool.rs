//! CPU work off the async executor: a bounded pool (≈ one worker per core) with a bounded queue,
//! and single-flight so concurrent misses for one key run one transform.

use crate::error::{Error, Result};
use crate::metrics::METRICS;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{OnceCell, Semaphore};

pub struct Pool {
    /// Workers plus queue slots: a request that cannot get one is refused at once (503).
    admission: Arc<Semaphore>,
    workers: Arc<Semaphore>,
}

/// Sets the flag when the waiting request goes away, so queued work for nobody is skipped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

struct DepthGuard;

impl Drop for DepthGuard {
    fn drop(&mut self) {
        METRICS.queue_depth.dec();
    }
}

impl Pool {
    pub fn new(workers: usize, queue: usize) -> Pool {
        Pool { admission: Arc::new(Semaphore::new(workers + queue)), workers: Arc::new(Semaphore::new(workers)) }
    }

    /// A place in the queue, or 503 at once when the queue is full. Taken before the source is
    /// fetched, so a flood is refused before it is downloaded and buffered.
    pub fn admit(&self) -> Result<Admission> {
        let permit = self.admission.clone().try_acquire_owned().map_err(|_| Error::Overloaded)?;
        METRICS.queue_depth.inc();
        Ok(Admission { permit, depth: DepthGuard, workers: self.workers.clone() })
    }

    /// Admission and run in one step.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<T> + Send + 'static,
        abandoned: impl Fn() -> bool + Send + 'static,
    ) -> Result<T> {
        self.admit()?.run(job, abandoned).await
    }
}

/// A request's place in the pool's queue; dropping it gives the place back.
pub struct Admission {
    permit: tokio::sync::OwnedSemaphorePermit,
    depth: DepthGuard,
    workers: Arc<Semaphore>,
}

impl Admission {
    /// Run `job` on a blocking thread once a worker is free. When the worker frees up and
    /// `abandoned()` says nobody wants the result any more, the job is skipped.
    pub async fn run<T: Send + 'static>(
        self,
        job: impl FnOnce() -> Result<T> + Send + 'static,
        abandoned: impl Fn() -> bool + Send + 'static,
    ) -> Result<T> {
        let Admission { permit, depth, workers } = self;
        let cancelled = Arc::new(AtomicBool::new(false));
        let _cancel_on_drop = CancelOnDrop(cancelled.clone());
        let worker = workers.acquire_owned().await.map_err(Error::internal)?;
        let result = tokio::task::spawn_blocking(move || {
            let _slots = (permit, worker, depth);
            if cancelled.load(Ordering::Relaxed) || abandoned() {
                METRICS.transforms.with_label_values(&["abandoned"]).inc();
                return Err(Error::ClientGone);
            }
            job()
        })
        .await
        .map_err(|e| Error::internal(format!("transform panicked: {e}")))?;
        result
    }
}

/// Concurrent calls with one key share one computation; its result (or error) goes to all.
pub struct Flights<K, T> {
    inflight: Mutex<HashMap<K, Arc<OnceCell<Result<T>>>>>,
}

impl<K: Eq + Hash + Clone, T: Clone> Default for Flights<K, T> {
    fn default() -> Self {
        Flights { inflight: Mutex::new(HashMap::new()) }
    }
}

impl<K: Eq + Hash + Clone, T: Clone> Flights<K, T> {
    /// If the caller that runs `work` goes away, a caller still waiting takes over with its own
    /// `work`; the entry leaves the map when its caller finishes or gives up, so abandoned
    /// flights do not accumulate.
    /// `work` receives a check that tells whether callers other than the one running it wait.
    /// A caller that joined a flight whose runner gave up (its client left) runs its own.
    pub async fn run<F: Future<Output = Result<T>>>(&self, key: K, work: impl Fn(Followers) -> F) -> Result<T>
    where
        T: Send + Sync + 'static,
    {
        loop {
            let cell = self.inflight.lock().expect("flights lock").entry(key.clone()).or_default().clone();
            let _leave = Leave { flights: self, key: &key, cell: &cell };
            let followers = Followers(Box::new({
                let cell = Arc::downgrade(&cell);
                // the map, the runner and this check hold the cell: anything beyond is a follower
                move || cell.upgrade().is_some_and(|c| Arc::strong_count(&c) > 3)
            }));
            let mut ran = false;
            let result = cell
                .get_or_init(|| {
                    ran = true;
                    work(followers)
                })
                .await
                .clone();
            if ran || !matches!(result, Err(Error::ClientGone)) {
                return result;
            }
            let mut map = self.inflight.lock().expect("flights lock");
            if map.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                map.remove(&key);
            }
        }
    }
}

/// Whether other callers wait on a flight.
pub struct Followers(Box<dyn Fn() -> bool + Send + Sync>);

impl Followers {
    pub fn waiting(&self) -> bool {
        (self.0)()
    }
}

/// Removes a flight's map entry when the caller that created or joined it is done.
struct Leave<'a, K: Eq + Hash, T> {
    flights: &'a Flights<K, T>,
    key: &'a K,
    cell: &'a Arc<OnceCell<Result<T>>>,
}

impl<K: Eq + Hash, T> Drop for Leave<'_, K, T> {
    fn drop(&mut self) {
        let mut map = self.flights.inflight.lock().unwrap_or_else(|e| e.into_inner());
        // once the computation is done, or when no other caller holds the cell (map + ours)
        let finished = self.cell.initialized() || Arc::strong_count(self.cell) <= 2;
        if finished && map.get(self.key).is_some_and(|c| Arc::ptr_eq(c, self.cell)) {
            map.remove(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test(flavor = "current_thread")]
    async fn concurrent_callers_of_one_key_share_one_computation() {
        let flights: Flights<u32, u32> = Flights::default();
        let runs = AtomicUsize::new(0);
        let work = |_: Followers| async {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok(7)
        };
        let results = futures_util::future::join_all((0..8).map(|_| flights.run(1, work))).await;
        assert!(results.iter().all(|r| *r.as_ref().unwrap() == 7));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(flights.inflight.lock().unwrap().is_empty(), "finished flights leave the map");
        // another key, and the same key later, compute again
        assert_eq!(flights.run(2, work).await.unwrap(), 7);
        assert_eq!(flights.run(1, work).await.unwrap(), 7);
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn errors_reach_every_waiter_and_a_gone_runner_hands_over() {
        let flights: Flights<u32, u32> = Flights::default();
        let failing = |_: Followers| async {
            tokio::task::yield_now().await;
            Err(Error::bad("no"))
        };
        let results = futures_util::future::join_all((0..3).map(|_| flights.run(1, failing))).await;
        assert!(results.iter().all(|r| matches!(r, Err(Error::BadRequest { .. }))));
        // a runner whose client left: a waiting caller runs its own computation
        let runs = AtomicUsize::new(0);
        let work = |_: Followers| async {
            let n = runs.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            if n == 0 {
                Err(Error::ClientGone)
            } else {
                Ok(9)
            }
        };
        let (a, b) = tokio::join!(flights.run(5, work), flights.run(5, work));
        assert!(matches!(a, Err(Error::ClientGone)));
        assert_eq!(b.unwrap(), 9);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_queue_answers_overloaded_at_once() {
        let pool = Pool::new(1, 1);
        let (first, second) = (pool.admit().unwrap(), pool.admit().unwrap());
        assert!(matches!(pool.admit(), Err(Error::Overloaded)));
        drop(first);
        let third = pool.admit().unwrap();
        assert_eq!(third.run(|| Ok(3), || false).await.unwrap(), 3);
        assert!(matches!(second.run(|| Ok(1), || true).await, Err(Error::ClientGone)), "abandoned work is skipped");
    }
}
