//! The store's instances as one session: their supervisors, started by `connect` and stopped
//! by `disconnect`, the placement of names over them, their blocking connections, and the
//! state derived from their health (the [`Report`] the supervisors talk to).

use crate::config::endpoint::Endpoint;
use crate::config::settings::Config;
use crate::script::keys::Layout;
use crate::session::blockers::Blockers;
use crate::session::instance::Instance;
use crate::session::open::Setup;
use crate::session::placement::Placement;
use crate::session::state::StateTracker;
use crate::session::supervisor::{Report, supervise};
use busmq_core::store::{StoreEvent, StoreState};
use busmq_core::{Error, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{broadcast, oneshot, watch};
use tokio::task::JoinHandle;

#[derive(Debug)]
struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// What the supervisors report to: the state and the placement history.
#[derive(Debug)]
struct Health {
    instances: Vec<Arc<Instance>>,
    placement: Arc<Placement>,
    state: Arc<StateTracker>,
}

impl Report for Health {
    fn health_changed(&self) {
        self.state.recompute(&self.instances);
    }

    fn memberships_seen(&self, memberships: Vec<String>) {
        self.placement.learn(memberships);
    }

    fn failed(&self, error: Error) {
        self.state.error(error);
    }
}

/// The instances of one store and their session.
#[derive(Debug)]
pub(crate) struct Fleet {
    pub(crate) instances: Vec<Arc<Instance>>,
    pub(crate) placement: Arc<Placement>,
    /// Per instance, the connections idle at-most-once consumers block on (fixed addresses).
    pub(crate) blockers: Vec<Option<Blockers>>,
    state: Arc<StateTracker>,
    setup: Setup,
    run: tokio::sync::Mutex<Option<Running>>,
    /// Between a `connect` and the next `disconnect`: calls may be sent.
    connected: AtomicBool,
}

impl Fleet {
    pub(crate) fn new(endpoints: Vec<Endpoint>, layout: &Layout, config: &Config) -> Result<Fleet> {
        let placement =
            Arc::new(Placement::new(endpoints.iter().map(|e| e.identity.clone()).collect()));
        let blockers = endpoints
            .iter()
            .map(|e| {
                let client = e.is_fixed().then(|| config.tls.client(e.info.clone()).ok()).flatten();
                client.map(|c| Blockers::new(c, config.connect_timeout))
            })
            .collect();
        let instances = endpoints
            .into_iter()
            .map(|e| Instance::new(e, config.clone()).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        let setup =
            Setup { layout: layout.clone(), membership: placement.membership().to_string() };
        Ok(Fleet {
            instances,
            placement,
            blockers,
            state: Arc::new(StateTracker::new()),
            setup,
            run: tokio::sync::Mutex::new(None),
            connected: AtomicBool::new(false),
        })
    }

    /// `NotConnected` outside `connect` .. `disconnect`.
    pub(crate) fn ensure_connected(&self) -> Result<()> {
        if self.connected.load(Ordering::SeqCst) { Ok(()) } else { Err(Error::NotConnected) }
    }

    /// Whether every instance has blocking connections.
    pub(crate) fn can_block(&self) -> bool {
        self.blockers.iter().all(Option::is_some)
    }

    pub(crate) fn state(&self) -> watch::Receiver<StoreState> {
        self.state.watch()
    }

    pub(crate) fn events(&self) -> broadcast::Receiver<StoreEvent> {
        self.state.subscribe()
    }

    /// Starts a supervisor per instance and returns once each has tried once. An instance that
    /// refuses this client's credentials stops them all again: that is the error.
    pub(crate) async fn connect(&self) -> Result<StoreState> {
        let mut run = self.run.lock().await;
        if run.is_some() {
            return Ok(self.state.get());
        }
        self.state.set_quiet(true);
        let (stop, stop_rx) = watch::channel(false);
        let health: Arc<dyn Report> = Arc::new(Health {
            instances: self.instances.clone(),
            placement: Arc::clone(&self.placement),
            state: Arc::clone(&self.state),
        });
        let mut tasks = Vec::with_capacity(self.instances.len());
        let mut firsts = Vec::with_capacity(self.instances.len());
        for (inst, blockers) in self.instances.iter().zip(&self.blockers) {
            inst.hub.reopen();
            if let Some(blockers) = blockers {
                blockers.open();
            }
            let (tx, rx) = oneshot::channel();
            let task = supervise(
                Arc::clone(inst),
                self.setup.clone(),
                Arc::clone(&health),
                stop_rx.clone(),
                tx,
            );
            tasks.push(tokio::spawn(task));
            firsts.push(rx);
        }
        let mut refused = None;
        for rx in firsts {
            if let Ok(Some(error)) = rx.await {
                refused = refused.or(Some(error));
            }
        }
        *run = Some(Running { stop, tasks });
        if let Some(error) = refused {
            // Left connected, the other supervisors would keep a store running that its owner
            // was told did not connect; stopped, a later connect starts afresh.
            drop(run);
            self.disconnect().await;
            return Err(error);
        }
        self.connected.store(true, Ordering::SeqCst);
        self.state.set_quiet(false);
        self.state.recompute(&self.instances);
        Ok(self.state.get())
    }

    /// Stops the supervisors, closes every connection and ends every stream. Idempotent.
    pub(crate) async fn disconnect(&self) {
        self.connected.store(false, Ordering::SeqCst);
        let running = self.run.lock().await.take();
        self.state.set_quiet(true);
        if let Some(running) = running {
            let _ = running.stop.send(true);
            for task in running.tasks {
                let _ = task.await;
            }
        }
        for (inst, blockers) in self.instances.iter().zip(&self.blockers) {
            inst.go_down();
            inst.hub.close();
            if let Some(blockers) = blockers {
                blockers.close();
            }
        }
        self.state.force(StoreState::Offline);
        self.state.set_quiet(false);
    }
}
