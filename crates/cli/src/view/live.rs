//! `chainrule train --view`: the viewer's server on its own thread, fed
//! by the training loop. The loop calls [`LiveView::tick`] after every
//! step; it records a curve point every [`STAT_EVERY`] iterations and
//! publishes a snapshot of the Gaussians every [`PUBLISH_SECONDS`]
//! (a copy of the parameters; the PLY is made on the server's thread when
//! a browser asks). Nothing the browser does can block or fail training:
//! the server only reads what was published, and its errors stay on its
//! threads.

use std::sync::Arc;
use std::time::Instant;

use splat::train::Trainer;

use super::state::{StatPoint, ViewState};
use crate::error::{CliError, CliResult};

/// Seconds between published snapshots.
pub const PUBLISH_SECONDS: f64 = 3.0;
/// Iterations between curve points.
pub const STAT_EVERY: u32 = 10;

/// The live viewer of a training run.
pub struct LiveView {
    state: Arc<ViewState>,
    start: Instant,
    last_publish: Instant,
    start_iteration: u32,
    /// The page's address.
    pub url: String,
}

impl LiveView {
    /// Binds 127.0.0.1:`port`, starts the server thread and publishes the
    /// initial scene.
    pub fn start(t: &Trainer, port: u16, background: [f64; 3]) -> CliResult<LiveView> {
        let cameras = super::state::cameras_json(t.data());
        // drawn as it trains: Mip-Splatting's projection when antialiased
        let st = Arc::new(
            ViewState::scene(t.gaussians::<f32>(), cameras, background, true)
                .with_antialiased(t.config().antialiased),
        );
        let (listener, addr) = super::server::bind("127.0.0.1", port).map_err(|e| {
            CliError::usage(format!(
                "--view: cannot listen on 127.0.0.1:{port}: {e} (try another --port)"
            ))
        })?;
        let handler = super::state::handler(st.clone());
        std::thread::Builder::new()
            .name("view-server".into())
            .spawn(move || super::server::serve(listener, handler))
            .map_err(|e| CliError::usage(format!("--view: cannot start the server thread: {e}")))?;
        Ok(LiveView {
            state: st,
            start: Instant::now(),
            last_publish: Instant::now(),
            start_iteration: t.iteration(),
            url: format!("http://{addr}/"),
        })
    }

    /// Called after each training step with its loss and PSNR.
    pub fn tick(&mut self, t: &Trainer, loss: f64, psnr: f64) {
        let it = t.iteration();
        if it % STAT_EVERY == 0 {
            let secs = self.start.elapsed().as_secs_f64();
            let rate = (it - self.start_iteration) as f64 / secs.max(1e-9);
            self.state.push_stat(
                StatPoint {
                    iteration: it,
                    seconds: secs,
                    loss,
                    psnr,
                    gaussians: t.len(),
                },
                rate,
            );
        }
        if self.last_publish.elapsed().as_secs_f64() >= PUBLISH_SECONDS {
            self.state.publish(t.gaussians::<f32>());
            self.last_publish = Instant::now();
        }
    }

    /// Publishes the final scene.
    pub fn finish(&self, t: &Trainer) {
        self.state.publish(t.gaussians::<f32>());
    }

    /// After training: keeps serving the final scene until the process is
    /// interrupted (the server thread runs on; this thread waits).
    pub fn serve_until_interrupted(&self) -> ! {
        eprintln!(
            "training finished; the viewer keeps serving the final scene at {} (Ctrl-C to stop)",
            self.url
        );
        loop {
            std::thread::park();
        }
    }
}
