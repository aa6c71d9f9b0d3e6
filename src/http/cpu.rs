//! The bounded pool for CPU-heavy work (adapter, engine, cards): off the actix workers, so
//! `/healthz`, `/readyz` and `/metrics` stay answered while grading is saturated
//! (issue 10, faults 3 and 4).
//!
//! `server.cpu_workers` calls run at once on tokio's blocking threads; `server.cpu_queue`
//! more may wait for a slot; any call beyond that is refused at once with 503 and
//! `Retry-After` rather than queued without bound.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;

/// The gate in front of the blocking pool.
#[derive(Clone, Debug)]
pub struct CpuPool {
    admission: Arc<Semaphore>,
    running: Arc<Semaphore>,
}

/// A call admitted to the pool (running or waiting for a slot).
#[derive(Debug)]
pub struct Admitted {
    admission: OwnedSemaphorePermit,
    running: Arc<Semaphore>,
}

impl CpuPool {
    /// `workers` at once, `queue` more waiting.
    pub fn new(workers: usize, queue: usize) -> CpuPool {
        CpuPool {
            admission: Arc::new(Semaphore::new(workers + queue)),
            running: Arc::new(Semaphore::new(workers)),
        }
    }

    /// A place in the pool, or 503 when it and its queue are full.
    pub fn admit(&self) -> Result<Admitted, ApiError> {
        let admission = self
            .admission
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::Busy)?;
        Ok(Admitted {
            admission,
            running: self.running.clone(),
        })
    }
}

impl Admitted {
    /// Runs `f` on a blocking thread once a slot is free. The slot stays taken until `f`
    /// returns, even when the caller stops waiting (a deadline), so the pool bound holds.
    pub async fn run<S, T, F>(self, state: S, f: F) -> Result<T, ApiError>
    where
        S: Send + 'static,
        T: Send + 'static,
        F: FnOnce(S) -> T + Send + 'static,
    {
        let slot = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::Busy)?;
        let admission = self.admission;
        tokio::task::spawn_blocking(move || {
            let _held = (slot, admission);
            f(state)
        })
        .await
        .map_err(|_| ApiError::Internal("the grading task failed".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_pool_and_queue_refuse_the_next_call() {
        let pool = CpuPool::new(1, 1);
        let a = pool.admit().expect("a slot");
        let b = pool.admit().expect("a queue place");
        assert!(matches!(pool.admit(), Err(ApiError::Busy)));
        drop(a);
        assert!(pool.admit().is_ok());
        drop(b);
    }
}
