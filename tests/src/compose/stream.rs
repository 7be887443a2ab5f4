//! Evaluations that keep running while a test disrupts a service: a stream of evaluations of
//! one promotion, and a burst of evaluations that each carry their own request id.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::Deployment;
use crate::cli::{CliOutput, exit};

/// Maximum time to wait for the evaluations a stream needs before or after the disruption.
const STREAM_TIMEOUT: Duration = Duration::from_secs(120);

/// One evaluation of a stream, with the moment it started.
#[derive(Debug, Clone)]
pub struct TimedEvaluation {
    pub started: Instant,
    pub output: CliOutput,
}

/// The evaluations of a stream and the moment the disruption was complete.
#[derive(Debug)]
pub struct Disruption {
    /// Every evaluation, in the order they finished.
    pub evaluations: Vec<TimedEvaluation>,
    /// When the disruption command returned: from here on the service is down or cut off.
    pub completed: Instant,
}

impl Disruption {
    /// Returns the evaluations that started after the disruption was complete.
    pub fn during(&self) -> Vec<&TimedEvaluation> {
        self.evaluations
            .iter()
            .filter(|evaluation| evaluation.started >= self.completed)
            .collect()
    }
}

/// Evaluates `promotion_id` in a loop on `threads` threads. Once one evaluation has finished, it
/// runs `disrupt`, then keeps the loops going until `after` evaluations that started after
/// `disrupt` returned have finished.
///
/// # Panics
///
/// Panics when the evaluations needed before or after the disruption do not finish within
/// two minutes.
pub fn evaluate_during(
    deployment: &Deployment,
    promotion_id: &str,
    threads: usize,
    after: usize,
    disrupt: impl FnOnce(),
) -> Disruption {
    let evaluations: Mutex<Vec<TimedEvaluation>> = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let count = |since: Option<Instant>| {
        let evaluations = evaluations.lock().unwrap_or_else(PoisonError::into_inner);
        evaluations
            .iter()
            .filter(|evaluation| since.is_none_or(|since| evaluation.started >= since))
            .count()
    };

    let completed = thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    let started = Instant::now();
                    let output = deployment.evaluate(promotion_id, None);
                    let mut evaluations =
                        evaluations.lock().unwrap_or_else(PoisonError::into_inner);
                    evaluations.push(TimedEvaluation { started, output });
                }
            });
        }
        // Stops the loops even when `disrupt` or an assertion below panics, so the scope ends.
        let _stop_loops = SetOnDrop(&stop);

        let waited = wait_until(|| count(None) >= 1);
        assert!(
            waited,
            "no evaluation of {promotion_id} finished within {STREAM_TIMEOUT:?} before the disruption"
        );
        disrupt();
        let completed = Instant::now();
        let enough = wait_until(|| count(Some(completed)) >= after);
        assert!(
            enough,
            "fewer than {after} evaluations of {promotion_id} finished within {STREAM_TIMEOUT:?} \
             after the disruption"
        );
        completed
    });
    Disruption {
        evaluations: evaluations
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner),
        completed,
    }
}

/// One evaluation of a burst: its request id and its output.
#[derive(Debug, Clone)]
pub struct BurstCall {
    pub request_id: String,
    pub output: CliOutput,
}

/// Evaluates `promotion_id` on `threads` threads, each call with a new request id
/// (`burst-<thread>-<n>`). Once `before` calls have finished, it runs `kill`. Each thread stops
/// after a call that found the gate unreachable (exit 4), or after its first call that started
/// once `kill` had returned.
///
/// # Panics
///
/// Panics when `before` calls do not finish within two minutes.
pub fn burst_until_killed(
    deployment: &Deployment,
    promotion_id: &str,
    threads: usize,
    before: usize,
    kill: impl FnOnce(),
) -> Vec<BurstCall> {
    let calls: Mutex<Vec<BurstCall>> = Mutex::new(Vec::new());
    let killed = AtomicBool::new(false);
    let finished = || calls.lock().unwrap_or_else(PoisonError::into_inner).len();

    thread::scope(|scope| {
        for thread_number in 0..threads {
            let calls = &calls;
            let killed = &killed;
            scope.spawn(move || {
                for call_number in 0.. {
                    let after_kill = killed.load(Ordering::SeqCst);
                    let request_id = format!("burst-{thread_number}-{call_number}");
                    let output = deployment.evaluate(promotion_id, Some(&request_id));
                    let unreachable = output.code == exit::UNREACHABLE;
                    calls
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(BurstCall { request_id, output });
                    if unreachable || after_kill {
                        break;
                    }
                }
            });
        }

        // Ends the loops even when `kill` or the assertion panics, so the scope ends.
        let _end_loops = SetOnDrop(&killed);
        let ready = wait_until(|| finished() >= before);
        assert!(
            ready,
            "fewer than {before} evaluations of {promotion_id} finished within {STREAM_TIMEOUT:?}"
        );
        kill();
    });
    calls.into_inner().unwrap_or_else(PoisonError::into_inner)
}

/// Sets the flag when dropped.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Polls `condition` every 20 ms for up to [`STREAM_TIMEOUT`]; returns whether it held.
fn wait_until(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + STREAM_TIMEOUT;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    condition()
}
