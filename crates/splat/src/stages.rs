//! Wall time per stage of a training iteration, as `chainrule bench train`
//! reports it: where an iteration's time goes.

use std::time::Instant;

/// Seconds spent in each stage (summed over however many iterations were
/// added together).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StageTimes {
    /// EWA projection and spherical-harmonic colours.
    pub projection: f64,
    /// Screen boxes, the depth sort and binning into tiles.
    pub sort_bin: f64,
    /// The tiled rasterizer's forward pass.
    pub raster: f64,
    /// The loss and its gradient with respect to the render.
    pub loss: f64,
    /// The rasterizer's backward pass.
    pub raster_backward: f64,
    /// The backward passes of the colours and the projection.
    pub projection_backward: f64,
    /// The optimiser's update.
    pub optimizer: f64,
    /// Densification statistics and density control (clone, split, prune,
    /// opacity reset).
    pub densify: f64,
    /// The rest: picking the view, converting parameters and gradients,
    /// checks.
    pub other: f64,
}

impl StageTimes {
    /// The stages' names and seconds, in pipeline order.
    pub fn named(&self) -> [(&'static str, f64); 9] {
        [
            ("projection", self.projection),
            ("sort_bin", self.sort_bin),
            ("raster", self.raster),
            ("loss", self.loss),
            ("raster_backward", self.raster_backward),
            ("projection_backward", self.projection_backward),
            ("optimizer", self.optimizer),
            ("densify", self.densify),
            ("other", self.other),
        ]
    }

    /// Total seconds over every stage.
    pub fn total(&self) -> f64 {
        self.named().iter().map(|(_, s)| s).sum()
    }

    /// Adds another measurement stage by stage.
    pub fn add(&mut self, o: &StageTimes) {
        self.projection += o.projection;
        self.sort_bin += o.sort_bin;
        self.raster += o.raster;
        self.loss += o.loss;
        self.raster_backward += o.raster_backward;
        self.projection_backward += o.projection_backward;
        self.optimizer += o.optimizer;
        self.densify += o.densify;
        self.other += o.other;
    }
}

/// A stopwatch handing out the time since its last lap.
#[derive(Debug)]
pub struct Lap(Instant);

impl Lap {
    /// Starts now.
    pub fn start() -> Self {
        Lap(Instant::now())
    }

    /// Seconds since the start or the previous lap; restarts.
    pub fn lap(&mut self) -> f64 {
        let now = Instant::now();
        let s = (now - self.0).as_secs_f64();
        self.0 = now;
        s
    }
}
