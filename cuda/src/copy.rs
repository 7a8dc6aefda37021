//! [`CopyEngine`]: asynchronous host↔device copies on two dedicated streams (one per
//! direction, so uploads and downloads overlap each other and compute), with an event per
//! transfer for completion tracking.
//!
//! A transfer takes its [`PinnedBuf`] by value and gives it back only when the transfer has
//! completed ([`CopyEngine::poll`], [`CopyEngine::wait`]), so the CPU cannot touch a buffer
//! the device is still reading or writing. Ordering with compute:
//!
//! - `after: Some(stream)` makes the copy wait for the work queued on that (compute) stream so
//!   far — e.g. offload a tensor once the kernel that last wrote it is done — without
//!   blocking the host or the other copy stream;
//! - [`CopyEngine::fence`] makes a compute stream wait for a transfer — e.g. a prefetched
//!   tensor before the kernel that reads it.
//!
//! ```text
//!  compute:  [ kernel 1 ][ kernel 2 ][ kernel 3 ]
//!  d2h:                  [ offload A ]                (waits for kernel 1 only)
//!  h2d:       [ prefetch B ]          ^ fence: kernel 3 waits for prefetch C
//!                          [ prefetch C ]
//! ```
//!
//! Invariants: every id in `inflight` has its `done` event recorded after its copy on its
//! stream; events in `spare` are not in use.

use std::collections::BTreeMap;

use crate::backend::{Backend, DevPtr, EventHandle, StreamHandle};
use crate::error::{Error, Result, invalid};
use crate::pinned::PinnedBuf;

/// Which way a transfer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// Host to device (upload, prefetch).
    HostToDevice,
    /// Device to host (download, offload).
    DeviceToHost,
}

/// A transfer queued on a [`CopyEngine`]; ids increase in queuing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TransferId(pub u64);

/// A transfer that could not be queued: the error, and the buffer back.
#[derive(Debug)]
pub struct Failed {
    /// Why.
    pub error: Error,
    /// The buffer, unchanged in ownership (its contents are unspecified).
    pub buf: PinnedBuf,
}

impl From<Failed> for Error {
    /// Keeps the error; the buffer is leaked (give it back to its pool to avoid that).
    fn from(f: Failed) -> Self {
        let Failed {
            error,
            buf: _leaked,
        } = f;
        error
    }
}

/// A finished transfer.
#[derive(Debug)]
pub struct Completed {
    /// Which transfer.
    pub id: TransferId,
    /// Its direction.
    pub direction: Direction,
    /// Bytes moved.
    pub bytes: u64,
    /// The buffer, free for the CPU again.
    pub buf: PinnedBuf,
    /// Device time between the transfer's start and end events, ms.
    pub device_ms: f32,
}

#[derive(Debug)]
struct InFlight {
    direction: Direction,
    bytes: u64,
    buf: PinnedBuf,
    start: EventHandle,
    done: EventHandle,
}

/// Counters of a [`CopyEngine`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CopyStats {
    /// Bytes uploaded (completed transfers).
    pub h2d_bytes: u64,
    /// Bytes downloaded (completed transfers).
    pub d2h_bytes: u64,
    /// Device milliseconds spent on completed uploads.
    pub h2d_ms: f64,
    /// Device milliseconds spent on completed downloads.
    pub d2h_ms: f64,
    /// Transfers completed.
    pub completed: u64,
}

/// Two copy streams and the transfers in flight on them. See the [module docs](self).
#[derive(Debug)]
pub struct CopyEngine {
    h2d: StreamHandle,
    d2h: StreamHandle,
    next: u64,
    inflight: BTreeMap<TransferId, InFlight>,
    spare: Vec<EventHandle>,
    stats: CopyStats,
}

impl CopyEngine {
    /// Creates the two copy streams on `backend` (the same backend must be passed to every
    /// later call).
    ///
    /// # Errors
    /// Backend errors.
    pub fn new<B: Backend + ?Sized>(backend: &mut B) -> Result<Self> {
        let h2d = backend.stream_create()?;
        let d2h = backend.stream_create().inspect_err(|_| {
            let _ = backend.stream_destroy(h2d);
        })?;
        Ok(CopyEngine {
            h2d,
            d2h,
            next: 0,
            inflight: BTreeMap::new(),
            spare: Vec::new(),
            stats: CopyStats::default(),
        })
    }

    /// The stream used for a direction.
    pub fn stream(&self, direction: Direction) -> StreamHandle {
        match direction {
            Direction::HostToDevice => self.h2d,
            Direction::DeviceToHost => self.d2h,
        }
    }

    /// Counters of completed transfers.
    pub fn stats(&self) -> CopyStats {
        self.stats
    }

    /// Transfers queued and not yet collected.
    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    fn event<B: Backend + ?Sized>(&mut self, backend: &mut B) -> Result<EventHandle> {
        match self.spare.pop() {
            Some(e) => Ok(e),
            None => backend.event_create(),
        }
    }

    /// Queues a copy of `bytes` from device `src` into `buf` (offload). With `after`, the copy
    /// starts only once the work queued on that stream so far is done.
    ///
    /// # Errors
    /// `bytes > buf.len()`; backend errors. The buffer comes back inside [`Failed`].
    pub fn download<B: Backend + ?Sized>(
        &mut self,
        backend: &mut B,
        src: DevPtr,
        buf: PinnedBuf,
        bytes: u64,
        after: Option<StreamHandle>,
    ) -> Result<TransferId, Failed> {
        self.queue(backend, Direction::DeviceToHost, src, buf, bytes, after)
    }

    /// Queues a copy of the first `bytes` of `buf` to device `dst` (prefetch, restore). With
    /// `after`, the copy waits for the work queued on that stream so far.
    ///
    /// # Errors
    /// As [`CopyEngine::download`].
    pub fn upload<B: Backend + ?Sized>(
        &mut self,
        backend: &mut B,
        buf: PinnedBuf,
        dst: DevPtr,
        bytes: u64,
        after: Option<StreamHandle>,
    ) -> Result<TransferId, Failed> {
        self.queue(backend, Direction::HostToDevice, dst, buf, bytes, after)
    }

    fn queue<B: Backend + ?Sized>(
        &mut self,
        backend: &mut B,
        direction: Direction,
        dev: DevPtr,
        mut buf: PinnedBuf,
        bytes: u64,
        after: Option<StreamHandle>,
    ) -> Result<TransferId, Failed> {
        if bytes > buf.len() {
            let error = invalid(format!(
                "a {bytes}-byte copy with a {}-byte buffer",
                buf.len()
            ));
            return Err(Failed { error, buf });
        }
        let stream = self.stream(direction);
        let mut events = Vec::new();
        let r = (|| {
            if let Some(s) = after {
                let dep = self.event(backend)?;
                events.push(dep);
                backend.event_record(dep, s)?;
                backend.stream_wait_event(stream, dep)?;
            }
            let start = self.event(backend)?;
            events.push(start);
            let done = self.event(backend)?;
            events.push(done);
            backend.event_record(start, stream)?;
            match direction {
                // SAFETY: `buf` holds `bytes` readable bytes (checked above) and moves into
                // `inflight` below, where nothing touches it until `done` has completed
                // (`poll`/`wait` check the event before handing it back).
                Direction::HostToDevice => unsafe {
                    backend.copy_h2d(dev, buf.as_ptr(), bytes, stream)?
                },
                // SAFETY: as above, for writes of `bytes` bytes into `buf`.
                Direction::DeviceToHost => unsafe {
                    backend.copy_d2h(buf.as_mut_ptr(), dev, bytes, stream)?
                },
            }
            backend.event_record(done, stream)?;
            Ok((start, done))
        })();
        match r {
            Ok((start, done)) => {
                // The dependency event (if any) is consumed by the wait; it can be reused.
                if after.is_some() {
                    self.spare.push(events[0]);
                }
                let id = TransferId(self.next);
                self.next += 1;
                self.inflight.insert(
                    id,
                    InFlight {
                        direction,
                        bytes,
                        buf,
                        start,
                        done,
                    },
                );
                Ok(id)
            }
            Err(error) => {
                // A copy may have been queued before a later call failed: wait for the
                // stream before handing the buffer back.
                let _ = backend.stream_synchronize(stream);
                self.spare.extend(events);
                Err(Failed { error, buf })
            }
        }
    }

    /// Makes `stream` (compute) wait until transfer `id` has completed, without blocking the
    /// host.
    ///
    /// # Errors
    /// An id not in flight; backend errors.
    pub fn fence<B: Backend + ?Sized>(
        &mut self,
        backend: &mut B,
        id: TransferId,
        stream: StreamHandle,
    ) -> Result<()> {
        let t = self
            .inflight
            .get(&id)
            .ok_or_else(|| invalid(format!("fence on transfer {}, not in flight", id.0)))?;
        backend.stream_wait_event(stream, t.done)
    }

    /// Whether transfer `id` has completed (it stays collectable).
    ///
    /// # Errors
    /// An id not in flight; backend errors.
    pub fn is_done<B: Backend + ?Sized>(
        &mut self,
        backend: &mut B,
        id: TransferId,
    ) -> Result<bool> {
        let t = self
            .inflight
            .get(&id)
            .ok_or_else(|| invalid(format!("transfer {} not in flight", id.0)))?;
        backend.event_query(t.done)
    }

    fn finish<B: Backend + ?Sized>(
        &mut self,
        backend: &mut B,
        id: TransferId,
    ) -> Result<Completed> {
        let t = self
            .inflight
            .remove(&id)
            .ok_or_else(|| invalid(format!("transfer {} not in flight", id.0)))?;
        let device_ms = backend.event_elapsed_ms(t.start, t.done).unwrap_or(0.0);
        self.spare.push(t.start);
        self.spare.push(t.done);
        match t.direction {
            Direction::HostToDevice => {
                self.stats.h2d_bytes += t.bytes;
                self.stats.h2d_ms += f64::from(device_ms);
            }
            Direction::DeviceToHost => {
                self.stats.d2h_bytes += t.bytes;
                self.stats.d2h_ms += f64::from(device_ms);
            }
        }
        self.stats.completed += 1;
        Ok(Completed {
            id,
            direction: t.direction,
            bytes: t.bytes,
            buf: t.buf,
            device_ms,
        })
    }

    /// Collects every completed transfer, in id order, handing their buffers back.
    ///
    /// # Errors
    /// Backend errors (transfers not yet collected stay in flight).
    pub fn poll<B: Backend + ?Sized>(&mut self, backend: &mut B) -> Result<Vec<Completed>> {
        let ids: Vec<TransferId> = self.inflight.keys().copied().collect();
        let mut out = Vec::new();
        for id in ids {
            let done = self.inflight[&id].done;
            if backend.event_query(done)? {
                out.push(self.finish(backend, id)?);
            }
        }
        Ok(out)
    }

    /// Blocks until transfer `id` completes and collects it.
    ///
    /// # Errors
    /// An id not in flight; backend errors.
    pub fn wait<B: Backend + ?Sized>(
        &mut self,
        backend: &mut B,
        id: TransferId,
    ) -> Result<Completed> {
        let done = self
            .inflight
            .get(&id)
            .ok_or_else(|| invalid(format!("transfer {} not in flight", id.0)))?
            .done;
        backend.event_synchronize(done)?;
        self.finish(backend, id)
    }

    /// Blocks until every transfer completes and collects them all, in id order.
    ///
    /// # Errors
    /// Backend errors.
    pub fn wait_all<B: Backend + ?Sized>(&mut self, backend: &mut B) -> Result<Vec<Completed>> {
        backend.stream_synchronize(self.h2d)?;
        backend.stream_synchronize(self.d2h)?;
        let ids: Vec<TransferId> = self.inflight.keys().copied().collect();
        ids.into_iter().map(|id| self.finish(backend, id)).collect()
    }

    /// Waits for everything, destroys the streams and events, and returns the buffers of
    /// transfers never collected.
    ///
    /// # Errors
    /// Backend errors.
    pub fn shutdown<B: Backend + ?Sized>(mut self, backend: &mut B) -> Result<Vec<PinnedBuf>> {
        let bufs = self.wait_all(backend)?.into_iter().map(|c| c.buf).collect();
        for e in self.spare.drain(..) {
            backend.event_destroy(e)?;
        }
        backend.stream_destroy(self.h2d)?;
        backend.stream_destroy(self.d2h)?;
        Ok(bufs)
    }
}
