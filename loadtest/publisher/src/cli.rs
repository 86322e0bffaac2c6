//! The command line: `--help` is the reference for every setting.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use service_kit::jetstream::stream_name;
use service_kit::settings::{
    boolean, one_of, whole_number, with_env_aliases, Setting, BROKER_ALIASES,
};

/// Publishes orders to a NATS Streaming channel or a JetStream stream, for trying and loading the
/// ingestor.
///
/// Every option can also be given as the environment variable named in brackets (STAN_CHANNEL also
/// as BROKER_CHANNEL). The options of one broker (--cluster-id; --stream, --jetstream-replicas,
/// --no-create-stream) are refused on the command line with the other broker, and ignored when
/// they come from the environment.
#[derive(Debug, Parser)]
#[command(name = "publisher", version)]
pub struct Cli {
    /// The broker: `stan` (NATS Streaming: --channel is a channel of the cluster --cluster-id) or
    /// `jetstream` (a nats-server with JetStream: --channel is a subject, stored by the stream
    /// --stream).
    #[arg(
        long,
        env = "BROKER",
        value_name = "BROKER",
        default_value = "stan",
        value_parser = one_of::<Broker>(),
        global = true
    )]
    pub broker: Broker,

    /// URL of the NATS server: of the streaming cluster with `stan`, a nats-server with JetStream
    /// with `jetstream`. Several, separated by commas, are servers of one cluster: any of them
    /// will do.
    #[arg(
        long,
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        global = true
    )]
    pub nats_url: String,

    /// Cluster id of the NATS Streaming server (--broker stan only).
    #[arg(
        long,
        env = "STAN_CLUSTER_ID",
        default_value = "test-cluster",
        global = true
    )]
    pub cluster_id: String,

    /// Channel to publish to, a NATS subject without wildcards: the channel with `stan`, the
    /// subject with `jetstream` (which the stream --stream must capture).
    #[arg(
        long,
        env = "STAN_CHANNEL",
        default_value = "orders",
        value_parser = Setting::new(subject),
        global = true
    )]
    pub channel: String,

    /// The JetStream stream that stores the subject (--broker jetstream only). Created when
    /// missing, as the ingestor creates it (on disk, every message kept, message ids remembered
    /// for 2 minutes), unless --no-create-stream; an existing one is used as it is, and must
    /// capture the subject.
    #[arg(
        long,
        env = "JETSTREAM_STREAM",
        value_name = "NAME",
        default_value = "ORDERS",
        value_parser = Setting::new(stream_name),
        global = true
    )]
    pub stream: String,

    /// How many servers keep each message of the stream, when the publisher creates it: 1 on a
    /// single server, 3 or 5 in a cluster (--broker jetstream only).
    #[arg(
        long,
        env = "JETSTREAM_REPLICAS",
        value_name = "N",
        default_value_t = 1,
        value_parser = whole_number::<usize>(1..=5),
        global = true
    )]
    pub jetstream_replicas: usize,

    /// A missing stream fails the run instead of being created (--broker jetstream only).
    /// JETSTREAM_CREATE_STREAM=false does the same; =true is the default.
    #[arg(
        long = "no-create-stream",
        env = "JETSTREAM_CREATE_STREAM",
        action = ArgAction::SetFalse,
        value_parser = boolean(),
        global = true
    )]
    pub create_stream: bool,

    /// Connections that publish in parallel. Each waits for the broker's ack of every message,
    /// so one connection manages a few thousand messages a second at most.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64), global = true)]
    pub connections: u16,

    /// The largest NATS payload the server accepts (its `max_payload`), in bytes. A message that
    /// would not fit, once wrapped in the streaming envelope (`stan`) or with its headers
    /// (`jetstream`), is refused before sending.
    #[arg(long, env = "NATS_MAX_PAYLOAD", default_value_t = 1024 * 1024, global = true)]
    pub max_payload: usize,

    /// How long to keep publishing a message the broker did not acknowledge, in seconds. A failed
    /// publish (no ack in time, connection lost, broker restarting) is sent again, the very same
    /// bytes, after a pause that grows from 0.1 s to 2 s, until the broker acknowledges it: with
    /// `stan` on a new connection with a new client id, with `jetstream` on a new connection if
    /// the connection was lost. Past this bound the run stops and fails, saying how many messages
    /// were not acknowledged. 0: the first failed publish fails the run. The first connections are
    /// not retried: a broker unreachable at the start fails the run at once. A message whose ack
    /// was lost is in a STAN channel twice (the ingestor stores it once); JetStream stores it once,
    /// as every publish carries the message's id (Nats-Msg-Id: what the acked log writes).
    #[arg(long, env = "PUBLISH_RETRY_SECS", default_value_t = 60, global = true)]
    pub retry_for: u64,

    /// Messages per second over all connections; 0: as fast as the connections go. Message i is
    /// due i/RATE seconds after the start, so a pause (a slow ack, a broker restart) does not
    /// stretch the run: the messages that fell behind go out at once until the schedule is met.
    #[arg(long, env = "PUBLISH_RATE", default_value_t = 0, global = true)]
    pub rate: u32,

    /// Writes one line for each message the broker acknowledged, in the order of the acks: the
    /// order id of a valid order, the path of a file, the name of a malformed message. The lines
    /// are buffered; the file is complete when the publisher exits, whether it succeeded or not.
    #[arg(long, env = "PUBLISH_ACKED_LOG", global = true)]
    pub acked_log: Option<PathBuf>,

    /// No progress bar. It is hidden anyway when standard error is not a terminal.
    #[arg(long, short, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// The brokers the publisher can publish to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Broker {
    /// NATS Streaming.
    Stan,
    /// JetStream, on nats-server 2.
    Jetstream,
}

/// The options that only one broker takes, by their ids.
const STAN_ONLY: &[&str] = &["cluster_id"];
const JETSTREAM_ONLY: &[&str] = &["stream", "jetstream_replicas", "create_stream"];

impl Cli {
    /// From the process's arguments and environment; prints help, or what is wrong, and exits on
    /// a wrong command line.
    pub fn from_env() -> Cli {
        Self::try_from_args(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    pub fn try_from_args(
        args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    ) -> Result<Cli, clap::Error> {
        let mut command = with_env_aliases(Cli::command(), BROKER_ALIASES, |name| {
            std::env::var_os(name)
        })?;
        let matches = command.try_get_matches_from_mut(args)?;
        let cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command))?;
        match cli.option_of_the_other_broker(&matches) {
            Some(message) => {
                Err(clap::Error::raw(ErrorKind::ArgumentConflict, message).with_cmd(&command))
            }
            None => Ok(cli),
        }
    }

    /// What is wrong when an option of the other broker is on the command line: one line.
    fn option_of_the_other_broker(&self, matches: &ArgMatches) -> Option<String> {
        let (others, theirs) = match self.broker {
            Broker::Stan => (JETSTREAM_ONLY, "jetstream"),
            Broker::Jetstream => (STAN_ONLY, "stan"),
        };
        let given = others
            .iter()
            .find(|id| given_on_the_command_line(matches, id))?;
        let flag = Cli::command()
            .get_arguments()
            .find(|arg| arg.get_id() == given)
            .and_then(|arg| arg.get_long())
            .unwrap_or(given)
            .to_string();
        Some(format!(
            "--{flag} is an option of --broker {theirs}, and this run publishes to --broker {}\n",
            self.broker.name()
        ))
    }
}

impl Broker {
    pub fn name(self) -> &'static str {
        match self {
            Broker::Stan => "stan",
            Broker::Jetstream => "jetstream",
        }
    }
}

/// Whether `id` was given on the command line, before the command or after it.
fn given_on_the_command_line(matches: &ArgMatches, id: &str) -> bool {
    let here = matches.value_source(id) == Some(ValueSource::CommandLine);
    here || matches
        .subcommand()
        .is_some_and(|(_, sub)| given_on_the_command_line(sub, id))
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Publishes each file's bytes, unchanged, as one message.
    File {
        /// Files to publish, in this order.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Publishes COUNT generated valid orders with distinct ids.
    Valid {
        /// How many orders to publish.
        count: u64,
        /// Seed of the generator: the same seed gives the same ids and contents (times are
        /// relative to now).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Publishes COUNT malformed messages, cycling through every kind, and counts them by kind.
    Invalid {
        /// How many messages to publish.
        count: u64,
        /// Seed of the generator.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Publishes COUNT messages of which a random share is malformed.
    Mixed {
        /// How many messages to publish.
        count: u64,
        /// The share of malformed messages, from 0 to 1.
        #[arg(long, default_value_t = 0.1, value_parser = ratio)]
        invalid_ratio: f64,
        /// Seed of the generator.
        #[arg(long)]
        seed: Option<u64>,
    },
}

fn ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{s:?} is not a number from 0 to 1")),
    }
}

/// A subject to publish to: tokens separated by dots, without wildcards, spaces or control
/// characters (a STAN channel name is one too).
fn subject(text: &str) -> Result<String, String> {
    if text.split('.').any(str::is_empty) {
        Err("must be tokens separated by dots, e.g. orders or orders.new".into())
    } else if text.contains(['*', '>']) {
        Err("must not contain the wildcards * or >".into())
    } else if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err("must not contain spaces or control characters".into())
    } else {
        Ok(text.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, String> {
        Cli::try_from_args(std::iter::once("publisher").chain(args.iter().copied()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn an_option_of_the_other_broker_on_the_command_line_is_refused_in_one_line() {
        let error =
            parse(&["--broker", "jetstream", "valid", "1", "--cluster-id", "c"]).unwrap_err();
        assert_eq!(
            error,
            "error: --cluster-id is an option of --broker stan, and this run publishes to \
             --broker jetstream\n"
        );
        let error = parse(&["--stream", "S", "valid", "1"]).unwrap_err();
        assert!(
            error.starts_with("error: --stream is an option of --broker jetstream"),
            "{error}"
        );
        let error = parse(&["file", "a", "--no-create-stream"]).unwrap_err();
        assert!(error.starts_with("error: --no-create-stream is"), "{error}");
    }

    #[test]
    fn the_options_of_the_broker_in_use_are_taken() {
        let cli = parse(&[
            "--broker=jetstream",
            "--stream=S",
            "--jetstream-replicas=3",
            "--no-create-stream",
            "valid",
            "1",
        ])
        .unwrap();
        assert_eq!(
            (
                cli.broker,
                cli.stream.as_str(),
                cli.jetstream_replicas,
                cli.create_stream
            ),
            (Broker::Jetstream, "S", 3, false)
        );
        let cli = parse(&["valid", "1", "--cluster-id", "c"]).unwrap();
        assert_eq!(
            (cli.broker, cli.cluster_id.as_str(), cli.create_stream),
            (Broker::Stan, "c", true)
        );
    }

    #[test]
    fn a_wrong_broker_stream_or_subject_is_refused_in_one_line_that_names_the_setting() {
        for (args, says) in [
            (&["--broker", "kafka"][..], "invalid value 'kafka' for --broker (env BROKER): must be stan or jetstream"),
            (&["--stream", "a.b"], "for --stream (env JETSTREAM_STREAM): may hold only letters, digits, - and _"),
            (&["--jetstream-replicas", "7"], "for --jetstream-replicas (env JETSTREAM_REPLICAS): must be a whole number from 1 to 5"),
            (&["--channel", "orders.*"], "for --channel (env STAN_CHANNEL): must not contain the wildcards"),
            (&["--channel", "orders..new"], "must be tokens separated by dots"),
        ] {
            let mut args = args.to_vec();
            args.extend(["valid", "1"]);
            let error = parse(&args).unwrap_err();
            assert!(error.contains(says), "{args:?}: {error}");
            assert_eq!(error.lines().count(), 1, "{args:?}: {error}");
        }
    }

    #[test]
    fn subjects_of_several_tokens_are_taken() {
        assert_eq!(subject("orders.new.eu"), Ok("orders.new.eu".to_string()));
        assert!(subject("").is_err());
        assert!(subject(".orders").is_err());
    }
}
