//! How one life of a node ends: what stopped it, and stopping the
//! consensus driver so that it saves its signer state on the way out.

use std::time::Duration;

use palisade_types::Height;
use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle};

use super::{NodeError, Ran, DRIVER};
use crate::context::NodeContext;
use crate::driver::DriverError;
use crate::supervisor::{Supervisor, TaskExit};

/// What ended a node's life.
pub(super) enum Ending {
    Shutdown,
    /// A catch-up staged a snapshot's ledger of this height.
    CaughtUp(Height),
    /// The consensus driver returned (by itself only on failure).
    Driver(Result<Result<(), DriverError>, JoinError>),
    Task(TaskExit),
}

/// What the node makes of `ending`: stops the driver where it still runs
/// (through `stop`), and says whether to reopen or why it failed.
pub(super) async fn conclude(
    ending: Ending,
    stop: watch::Sender<bool>,
    driver: &mut JoinHandle<Result<(), DriverError>>,
    tasks: &mut Supervisor,
    ctx: &NodeContext,
) -> Result<Ran, NodeError> {
    match ending {
        Ending::Shutdown => {
            tracing::info!("shutting down");
            stop_driver(stop, driver).await.map(|()| Ran::Stopped)
        }
        Ending::CaughtUp(h) => {
            tracing::info!(height = %h, "stopping to reopen on the snapshot's ledger");
            stop_driver(stop, driver).await.map(|()| Ran::CaughtUp)
        }
        Ending::Driver(r) => {
            let e = driver_failure(r, tasks).await;
            ctx.health.task_stopped(DRIVER, e.to_string());
            tracing::error!(error = %e, "the consensus driver stopped; stopping the node");
            Err(e)
        }
        Ending::Task(TaskExit { task, why }) => {
            tracing::error!(task, why = %why, "a background task stopped; stopping the node");
            match stop_driver(stop, driver).await {
                // The driver failed as well: its error is the more
                // fundamental one (storage, signer state).
                Err(e) => {
                    tracing::error!(error = %e, "the consensus driver failed too");
                    Err(e)
                }
                Ok(()) => Err(NodeError::TaskStopped { task, why }),
            }
        }
    }
}

/// Stops the driver, which saves its signer state on the way out; its
/// error if it had one.
async fn stop_driver(
    stop: watch::Sender<bool>,
    driver: &mut JoinHandle<Result<(), DriverError>>,
) -> Result<(), NodeError> {
    let _ = stop.send(true);
    match tokio::time::timeout(Duration::from_secs(10), driver).await {
        Ok(Ok(r)) => r.map_err(NodeError::from),
        _ => Ok(()),
    }
}

/// Why a driver that returned by itself failed. It returns by itself only
/// on shutdown: anything else is a failure, even without an error of its
/// own.
async fn driver_failure(
    r: Result<Result<(), DriverError>, JoinError>,
    tasks: &mut Supervisor,
) -> NodeError {
    match r {
        Ok(Err(e)) => NodeError::from(e),
        // It ends without an error when its input closes: the task that
        // fed it stopped, which is the cause to report if it shows up.
        Ok(Ok(())) => {
            match tokio::time::timeout(Duration::from_millis(500), tasks.next_exit()).await {
                Ok(TaskExit { task, why }) => NodeError::TaskStopped { task, why },
                Err(_) => NodeError::TaskStopped {
                    task: DRIVER,
                    why: "ended unexpectedly".into(),
                },
            }
        }
        Err(e) => NodeError::TaskStopped {
            task: DRIVER,
            why: crate::supervisor::why(e),
        },
    }
}
