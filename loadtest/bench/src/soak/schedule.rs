//! The faults of a soak, drawn from a seed: the same seed and duration give the same schedule.
//!
//! The faults take turns in rounds: each round is the seven kinds below in an order shuffled by
//! the seed, so that any seven faults in a row hold every kind. The window between the quiet
//! start and the quiet end is cut into one slot per fault, at least seven (one round) and about
//! one every `--mean-gap-secs`; each fault is due at a random moment in the first 60 % of its
//! slot, leaving the rest for the system to come back. The script waits for each fault to be over
//! (its process ready again) before it starts the next, so a slow recovery delays the next fault
//! and never piles faults up.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::files::Action;
use super::prng::SplitMix64;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    seed: u64,
    /// The length of the run, in seconds.
    #[arg(long)]
    duration_secs: u64,
    /// No fault in the first seconds: every process starts and the load settles.
    #[arg(long, default_value_t = 20)]
    quiet_start_secs: u64,
    /// No fault starts in the last seconds: the system is whole for a while before the end.
    #[arg(long, default_value_t = 30)]
    quiet_end_secs: u64,
    /// About one fault this often, in seconds, when that gives more than one round.
    #[arg(long, default_value_t = 40)]
    mean_gap_secs: u64,
    /// Where to write the schedule.
    #[arg(long)]
    out: PathBuf,
}

/// The kinds, in the order a round starts from before it is shuffled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    KillIngestor,
    KillApi,
    Freeze,
    RestartPostgres,
    RestartBrokerNode,
    TerminateListener,
    Double,
}

const ROUND: [Kind; 7] = [
    Kind::KillIngestor,
    Kind::KillApi,
    Kind::Freeze,
    Kind::RestartPostgres,
    Kind::RestartBrokerNode,
    Kind::TerminateListener,
    Kind::Double,
];

const INGESTORS: &[&str] = &["ingestor-1", "ingestor-2"];
const APIS: &[&str] = &["api-1", "api-2", "api-3"];
const BROKER_NODES: &[&str] = &["stan-a", "stan-b", "stan-c"];
const FROZEN: &[&str] = &[
    "ingestor-1",
    "ingestor-2",
    "api-1",
    "api-2",
    "api-3",
    "stan-a",
    "stan-b",
    "stan-c",
];

/// The broker drops a client that missed `hb_fail_count` (3) heartbeats `hb_interval` (2 s)
/// apart (scripts/lib/stan.sh): a freeze lasts longer than that, up to 15 s.
const FREEZE_MS: (u64, u64) = (7_000, 15_000);

pub fn run(args: Args) -> anyhow::Result<()> {
    let actions = schedule(&args);
    let mut text = format!(
        "# seed {} duration_secs {}\n# index\tat_ms\tkind\ttarget\tsignal\thold_ms\n",
        args.seed, args.duration_secs
    );
    for action in &actions {
        writeln!(text, "{}", action.line())?;
    }
    std::fs::write(&args.out, &text)?;
    print!("{text}");
    Ok(())
}

fn schedule(args: &Args) -> Vec<Action> {
    let mut rng = SplitMix64::new(args.seed);
    let start_ms = args.quiet_start_secs * 1000;
    let end_ms = (args.duration_secs.saturating_sub(args.quiet_end_secs) * 1000).max(start_ms);
    let window = end_ms - start_ms;
    let faults = (window / (args.mean_gap_secs.max(1) * 1000)).max(ROUND.len() as u64);
    let slot = window / faults;
    let mut round = Vec::new();
    let mut actions = Vec::new();
    for index in 0..faults {
        if round.is_empty() {
            round = ROUND.to_vec();
            rng.shuffle(&mut round);
        }
        let kind = round.pop().expect("a kind");
        let at_ms = start_ms + index * slot + rng.below(slot * 6 / 10 + 1);
        let index = index as u32 + 1;
        match kind {
            Kind::Double => {
                let (first, second) = double(&mut rng);
                actions.push(action(&mut rng, index, at_ms, first, None));
                let taken = actions.last().map(|a| a.target.clone());
                actions.push(action(&mut rng, index, at_ms, second, taken.as_deref()));
            }
            single => actions.push(action(&mut rng, index, at_ms, single, None)),
        }
    }
    actions
}

/// Two kinds of fault that may run together: not the same kind, and not a LISTEN connection
/// cut while Postgres restarts (there is none to cut then).
fn double(rng: &mut SplitMix64) -> (Kind, Kind) {
    let singles = &ROUND[..ROUND.len() - 1];
    loop {
        let (a, b) = (*rng.pick(singles), *rng.pick(singles));
        let clash = [Kind::RestartPostgres, Kind::TerminateListener];
        if a != b && !(clash.contains(&a) && clash.contains(&b)) {
            return (a, b);
        }
    }
}

/// An action of `kind`, on another target than `taken`.
fn action(rng: &mut SplitMix64, index: u32, at_ms: u64, kind: Kind, taken: Option<&str>) -> Action {
    let (name, targets, signals, hold): (_, &[&str], &[&str], _) = match kind {
        Kind::KillIngestor => ("kill-ingestor", INGESTORS, &["KILL"], (500, 3_000)),
        Kind::KillApi => ("kill-api", APIS, &["KILL"], (500, 3_000)),
        Kind::Freeze => ("freeze", FROZEN, &["STOP"], FREEZE_MS),
        // INT: a fast shutdown; QUIT: an immediate one, recovered from the WAL at the start.
        Kind::RestartPostgres => (
            "restart-postgres",
            &["postgres"],
            &["INT", "QUIT"],
            (1_000, 5_000),
        ),
        Kind::RestartBrokerNode => (
            "restart-broker-node",
            BROKER_NODES,
            &["KILL", "TERM"],
            (1_000, 5_000),
        ),
        Kind::TerminateListener => ("terminate-listener", APIS, &["-"], (0, 0)),
        Kind::Double => unreachable!("a double is two single actions"),
    };
    let free: Vec<&str> = targets
        .iter()
        .copied()
        .filter(|t| Some(*t) != taken)
        .collect();
    Action {
        index,
        at_ms,
        kind: name.into(),
        target: rng.pick(&free).to_string(),
        signal: rng.pick(signals).to_string(),
        hold_ms: rng.between(hold.0, hold.1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(seed: u64, duration_secs: u64) -> Args {
        Args {
            seed,
            duration_secs,
            quiet_start_secs: 20,
            quiet_end_secs: 30,
            mean_gap_secs: 40,
            out: PathBuf::new(),
        }
    }

    fn lines(actions: &[Action]) -> Vec<String> {
        actions.iter().map(Action::line).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_another_seed_another() {
        let a = lines(&schedule(&args(42, 1800)));
        assert_eq!(a, lines(&schedule(&args(42, 1800))));
        assert_ne!(a, lines(&schedule(&args(43, 1800))));
    }

    #[test]
    fn a_short_run_holds_every_kind_and_the_faults_stay_in_the_window_in_order() {
        for seed in 0..50 {
            let actions = schedule(&args(seed, 180));
            let kinds: std::collections::BTreeSet<&str> =
                actions.iter().map(|a| a.kind.as_str()).collect();
            assert_eq!(kinds.len(), 6, "seed {seed}: {kinds:?}");
            assert_eq!(actions.iter().map(|a| a.index).max(), Some(7));
            assert!(actions.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
            assert!(actions.iter().all(|a| (20_000..150_000).contains(&a.at_ms)));
        }
    }

    #[test]
    fn the_two_actions_of_a_double_differ_in_kind_and_target() {
        for seed in 0..200 {
            let actions = schedule(&args(seed, 1800));
            for pair in actions.windows(2).filter(|w| w[0].index == w[1].index) {
                assert_ne!(pair[0].kind, pair[1].kind);
                assert_ne!(pair[0].target, pair[1].target);
            }
        }
    }

    #[test]
    fn a_long_run_has_about_one_fault_every_mean_gap() {
        let actions = schedule(&args(1, 1800));
        let faults = actions.iter().map(|a| a.index).max().unwrap();
        assert_eq!(faults, 43);
    }
}
