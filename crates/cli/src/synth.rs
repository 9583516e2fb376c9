//! `chainrule synth DIR`: writes a NeRF-synthetic dataset of a procedural
//! scene (ray-traced spheres and boxes, not Gaussians), so `train` can run
//! with no download.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use splat::data::synth::{write_dataset, SynthOptions};

use crate::error::{CliError, CliResult};

/// Arguments of `chainrule synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Folder to write the dataset into (created if missing).
    pub dir: PathBuf,
    /// Number of training views.
    #[arg(long, default_value_t = 100)]
    pub views: usize,
    /// Number of test views (the validation split has as many).
    #[arg(long, default_value_t = 25)]
    pub test_views: usize,
    /// Width and height of the images in pixels.
    #[arg(long, default_value_t = 200)]
    pub size: u32,
    /// Seed of the scene's layout and the training cameras.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

/// Runs `chainrule synth`.
pub fn run(args: SynthArgs) -> CliResult {
    let t = Instant::now();
    crate::output::ensure_dir(&args.dir)?;
    let opts = SynthOptions {
        train_views: args.views,
        test_views: args.test_views,
        size: args.size,
        seed: args.seed,
    };
    let s = write_dataset(&args.dir, &opts).map_err(CliError::data)?;
    let secs = t.elapsed().as_secs_f64();
    if args.json {
        let v = serde_json::json!({
            "dir": args.dir.display().to_string(),
            "train": s.train, "val": s.test, "test": s.test, "size": s.size, "seconds": secs,
        });
        println!("{v}");
    } else {
        println!(
            "wrote {} training, {} validation and {} test views of {}×{} to {} in {:.1} s",
            s.train,
            s.test,
            s.test,
            s.size,
            s.size,
            args.dir.display(),
            secs
        );
    }
    Ok(())
}
