//! Distillation through `diffusion train`: a trained run is the teacher of consistency
//! distillation (`[loss] kind = "scm"` with `teacher`) and of progressive distillation (`kind =
//! "progressive"`), whose student teaches the next round; the students sample in one or two
//! steps far better than their teacher does in as many, the runs are sampled again without their
//! teachers, and a missing teacher is a clear error.

#![cfg(feature = "tch")]

mod common;

use common::{metric, outcome, tiny_with, TINY};
use std::path::Path;
use std::process::Command;

/// The `diffusion` program run in `dir` with `args`: success and what it printed.
fn diffusion(dir: &Path, args: &[&str]) -> (bool, String) {
    outcome(
        Command::new(env!("CARGO_BIN_EXE_diffusion"))
            .current_dir(dir)
            .args(args)
            .output()
            .unwrap(),
    )
}

/// The teacher sampled with `steps` DDIM steps on its own grid: its sliced W2.
fn teacher_ddim(dir: &Path, steps: usize) -> f64 {
    let out = format!("teacher_ddim{steps}");
    let (ok, text) = diffusion(
        dir,
        &[
            "generate",
            "--run",
            "teacher",
            "--out",
            &out,
            "--set",
            "sample.solver=\"ddim\"",
            "--set",
            &format!("sample.steps={steps}"),
        ],
    );
    assert!(ok, "{text}");
    metric(&text, "sliced_w2")
}

#[test]
fn trained_runs_teach_consistency_and_progressive_students() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // The teacher: a tiny EDM run.
    std::fs::write(dir.join("teacher.toml"), TINY).unwrap();
    let (ok, text) = diffusion(
        dir,
        &["train", "--config", "teacher.toml", "--out", "teacher"],
    );
    assert!(ok, "{text}");
    let teacher_many = metric(&text, "sliced_w2");
    let (teacher1, teacher2) = (teacher_ddim(dir, 1), teacher_ddim(dir, 2));

    // The students: the teacher's network and recipe with another seed (and, for sCT's time
    // derivative, low time frequencies), their own `[loss]` and `[sample]`.
    let student =
        |loss: &str, sample: &str| tiny_with(loss, sample).replace("seed = 1", "seed = 2");
    // sCD: one step of the student against one step of its teacher.
    let scd = student(
        "[loss]\nkind = \"scm\"\nsigma_d = 2.0\np_mean = -0.4\np_std = 1.4\nwarmup_steps = 40\n\
         adaptive = false\nteacher = \"teacher\"",
        "[sample]\nsolver = \"consistency\"\ngrid = \"uniform\"\nsteps = 1\nn = 1000",
    )
    .replace("scale = 4.0", "scale = 0.2");
    std::fs::write(dir.join("scd.toml"), scd).unwrap();
    let (ok, text) = diffusion(dir, &["train", "--config", "scd.toml", "--out", "scd"]);
    assert!(ok && text.contains("scm(distillation"), "{text}");
    let scd1 = metric(&text, "sliced_w2");
    assert!(
        scd1 < 0.4 * teacher1,
        "sCD 1 step {scd1} vs the teacher's 1 DDIM step {teacher1} (and {teacher_many} in 12 Heun steps)"
    );
    // The run records where its teacher is, whatever the directory it is sampled from.
    let written = std::fs::read_to_string(dir.join("scd/config.toml")).unwrap();
    let abs = dir.join("teacher").canonicalize().unwrap();
    assert!(
        written.contains(&format!("teacher = {:?}", abs.to_str().unwrap()))
            || written.contains(&format!(
                "teacher = {:?}",
                dir.join("teacher").to_str().unwrap()
            )),
        "{written}"
    );

    // Progressive distillation: a 2-step student of the teacher, then a 1-step student of it.
    let pd = student(
        "[loss]\nkind = \"progressive\"\nteacher = \"teacher\"\nsteps = 2",
        "[sample]\nsolver = \"ddim\"\ngrid = \"uniform:t_start=0.99,t_end=0.001\"\nsteps = 2\nn = 1000",
    );
    std::fs::write(dir.join("pd.toml"), pd).unwrap();
    let (ok, text) = diffusion(dir, &["train", "--config", "pd.toml", "--out", "pd2"]);
    assert!(ok && text.contains("progressive-distillation(2"), "{text}");
    let pd2 = metric(&text, "sliced_w2");
    assert!(
        pd2 < 0.5 * teacher2,
        "2-step student {pd2} vs the teacher's 2 DDIM steps {teacher2}"
    );
    // The next round reads the student without the first teacher.
    std::fs::rename(dir.join("teacher"), dir.join("teacher_moved")).unwrap();
    let (ok, text) = diffusion(
        dir,
        &[
            "train",
            "--config",
            "pd.toml",
            "--out",
            "pd1",
            "--set",
            "loss.teacher=\"pd2\"",
            "--set",
            "loss.steps=1",
            "--set",
            "sample.steps=1",
            "--init-weights",
            "pd2/ema_0.95.safetensors",
        ],
    );
    assert!(ok && text.contains("progressive-distillation(1"), "{text}");
    let pd1 = metric(&text, "sliced_w2");
    assert!(
        pd1 < 0.4 * teacher1,
        "1-step student {pd1} vs the teacher's 1 DDIM step {teacher1}"
    );
    // Students are sampled again without any teacher at hand.
    for (run, w) in [("pd1", pd1), ("scd", scd1)] {
        let (ok, text) = diffusion(dir, &["generate", "--run", run, "--out", "again"]);
        assert!(ok, "{text}");
        assert_eq!(metric(&text, "sliced_w2"), w, "{run}: {text}");
    }
    // ... but training needs it, and says which folder is missing.
    let (ok, text) = diffusion(dir, &["train", "--config", "pd.toml", "--out", "pd_again"]);
    assert!(
        !ok && text.contains("teacher") && text.contains("config.toml"),
        "{text}"
    );
}
