//! Progress of a training run: [`train`](crate::train()) reports once while preparing, after every
//! mini-batch and once before the hold-out evaluation; `Break` from [`Progress::event`] cancels.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use crate::error::TrainError;

/// What a progress report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Fitting pipelines, building tensors, estimating thresholds.
    Preparing,
    /// One mini-batch step done.
    Training,
    /// Measuring the held-out MAP.
    Evaluating,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProgressEvent {
    pub phase: Phase,
    /// 0-based epoch and batch of the step just done.
    pub epoch: usize,
    pub epochs: usize,
    pub batch: usize,
    pub batches: usize,
    /// Loss of the step just done (NaN outside `Training`).
    pub loss: f64,
    pub elapsed: Duration,
    /// Estimated time to the end of training, from the mean step time so far.
    pub remaining: Option<Duration>,
}

/// Receives progress; `Break` cancels training.
pub trait Progress {
    fn event(&mut self, e: &ProgressEvent) -> ControlFlow<()>;
}

/// A [`Progress`] that ignores every event.
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&mut self, _: &ProgressEvent) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

impl<F: FnMut(&ProgressEvent) -> ControlFlow<()>> Progress for F {
    fn event(&mut self, e: &ProgressEvent) -> ControlFlow<()> {
        self(e)
    }
}

/// Counts steps, reports them, and turns `Break` into `Cancelled`.
pub(crate) struct Ticker<'a> {
    progress: &'a mut dyn Progress,
    start: Instant,
    steps_done: usize,
    /// Steps of the whole run (the training loop sets it), for the remaining-time estimate.
    pub(crate) steps_total: usize,
}

impl<'a> Ticker<'a> {
    pub(crate) fn new(progress: &'a mut dyn Progress) -> Self {
        Ticker { progress, start: Instant::now(), steps_done: 0, steps_total: 0 }
    }

    /// Reports the start of a phase other than a training step.
    pub(crate) fn phase(&mut self, phase: Phase, epochs: usize) -> Result<(), TrainError> {
        let e = ProgressEvent {
            phase,
            epoch: 0,
            epochs,
            batch: 0,
            batches: 0,
            loss: f64::NAN,
            elapsed: self.start.elapsed(),
            remaining: None,
        };
        match self.progress.event(&e) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(TrainError::Cancelled),
        }
    }

    /// Reports one training step (0-based epoch and batch).
    pub(crate) fn step(
        &mut self,
        epoch: usize,
        epochs: usize,
        batch: usize,
        batches: usize,
        loss: f64,
    ) -> Result<(), TrainError> {
        self.steps_done += 1;
        let elapsed = self.start.elapsed();
        let left = self.steps_total.saturating_sub(self.steps_done) as f64;
        let remaining = Some(elapsed.mul_f64(left / self.steps_done as f64));
        let e =
            ProgressEvent { phase: Phase::Training, epoch, epochs, batch, batches, loss, elapsed, remaining };
        match self.progress.event(&e) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(TrainError::Cancelled),
        }
    }
}
