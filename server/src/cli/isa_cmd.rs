//! `qwen-ls isa`: the CPU instruction-set levels the engine's kernels can run on this machine, and the one a
//! run would use (after `--isa` / `QWEN_LS_ISA`). Scripts use it to run a suite once per level the machine
//! has (`.ci/run` does) and to say which level a measurement ran on.

use clap::Args;
use qwen_engine::kernels::Isa;

/// Arguments of `qwen-ls isa`.
#[derive(Debug, Args)]
pub struct IsaArgs {
    /// Print only the names of the levels this process may run, best first, one per line.
    #[arg(long)]
    pub supported: bool,
}

/// Prints the levels.
pub fn run(args: &IsaArgs) -> anyhow::Result<()> {
    let selected = Isa::selected()?;
    if args.supported {
        for isa in Isa::supported() {
            outln!("{isa}");
        }
        return Ok(());
    }
    for isa in Isa::ALL {
        let state = if isa == selected {
            "selected"
        } else if isa.is_supported() {
            "supported"
        } else if isa.cpu_supports() {
            "above the --isa cap"
        } else {
            "not on this CPU"
        };
        outln!("{:<22} {state}", isa.name());
    }
    Ok(())
}
