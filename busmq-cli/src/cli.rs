//! The command line: global connection options and one subcommand per task, as clap parses
//! them. `busmq --help` and `busmq <command> --help` are generated from the doc comments here.

use crate::connect::parse_duration;
use crate::headers::parse_header;
use clap::{Parser, Subcommand};
use std::time::Duration;

const AFTER_HELP: &str = "\
Exit codes:
  0  ok (also when a following command is stopped with Ctrl-C)
  1  any other error
  2  usage: a wrong argument, option or name
  3  bad URL: a connection URL (or the set of URLs) cannot be used
  4  Redis unreachable: no answer within --timeout, or the connection was lost
  5  access denied: wrong or missing password, or a missing ACL right
  6  not found: the queue does not exist (stat, peek, tail), or dead letters asked for by id
  7  no reply (request): the service has no server, the server failed the request, or no
     reply came within --timeout

Passwords in URLs never appear in any output.";

/// Look at and work with busmq queues, dead letters, topics and channels in Redis.
#[derive(Debug, Parser)]
#[command(name = "busmq", version, after_help = AFTER_HELP)]
pub(crate) struct Cli {
    /// Redis to connect to: redis://, rediss://, redis+unix://, redis+sentinel:// or
    /// redis+cluster:// (repeat the option, or separate URLs with commas, for several
    /// instances) [default: redis://127.0.0.1:6379]
    #[arg(long, global = true, env = "BUSMQ_URL", hide_env_values = true, value_name = "URL")]
    pub(crate) url: Vec<String>,

    /// The key namespace the queues live under
    #[arg(long, global = true, env = "BUSMQ_NAMESPACE", default_value = "busmq")]
    pub(crate) namespace: String,

    /// How long to wait for Redis before giving up (e.g. 5s, 500ms)
    #[arg(long, global = true, default_value = "5s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,

    /// Print one JSON document instead of text (following commands print it when they stop)
    #[arg(long, global = true)]
    pub(crate) json: bool,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List the queues of the namespace with their depth, consumers, ttl and quarantined
    /// entries (uses SCAN, never KEYS)
    Ls,

    /// Show everything about one queue: counts, consumers, spec, ids, dead letters, metadata
    Stat {
        /// The queue
        queue: String,
    },

    /// Show messages of a queue without removing them
    Peek {
        /// The queue
        queue: String,
        /// Start at the N-th oldest message (0-based)
        #[arg(long, value_name = "N", conflicts_with = "id")]
        from: Option<u64>,
        /// Start at the message with this id (or the first after it)
        #[arg(long, value_name = "ID")]
        id: Option<u64>,
        /// How many messages to show
        #[arg(short = 'n', long = "count", value_name = "N", default_value_t = 10)]
        count: u32,
    },

    /// Follow new messages of a queue without consuming them, until Ctrl-C or --count
    Tail {
        /// The queue
        queue: String,
        /// Stop after this many messages
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// How often to look for new messages
        #[arg(long, default_value = "200ms", value_parser = parse_duration)]
        interval: Duration,
    },

    /// Push messages to a queue: the arguments, or else each line of stdin
    Push {
        /// The queue (created if it does not exist)
        queue: String,
        /// The messages; without any, each line of stdin is one
        messages: Vec<String>,
        /// Push the bytes as they are instead of as JSON strings (e.g. a JSON document for a
        /// consumer of a struct)
        #[arg(long)]
        raw: bool,
        /// A header for every message of this run, as KEY=VALUE (repeat for several; a key
        /// given twice keeps its last value)
        #[arg(long = "header", value_name = "KEY=VALUE", value_parser = parse_header)]
        headers: Vec<(String, String)>,
        /// The ttl of the queue if this push creates it (it expires that long after the last
        /// client detaches)
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        ttl: Duration,
    },

    /// Send a request to a service and print its replies (partial ones first), one per line;
    /// --timeout is the longest wait for each reply
    Request {
        /// The service
        service: String,
        /// The request
        body: String,
        /// Send the body as the JSON document it is instead of as a JSON string (e.g. for a
        /// server of a struct)
        #[arg(long)]
        raw: bool,
        /// A header of the request, as KEY=VALUE (repeat for several)
        #[arg(long = "header", value_name = "KEY=VALUE", value_parser = parse_header)]
        headers: Vec<(String, String)>,
    },

    /// Consume messages of a queue (removing them) and print them, until Ctrl-C, --max or
    /// --idle
    Consume {
        /// The queue
        queue: String,
        /// Stop after this many messages
        #[arg(long, value_name = "N")]
        max: Option<u64>,
        /// At least once: acknowledge each message once it is printed
        #[arg(long)]
        reliable: bool,
        /// Stop when no message came for this long
        #[arg(long, value_parser = parse_duration)]
        idle: Option<Duration>,
    },

    /// Dead letters of a queue (its dead-letter queue <queue>.dlq)
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },

    /// Publish a message to a topic (pub/sub: only live subscribers get it)
    Pub {
        /// The topic
        topic: String,
        /// The message
        message: String,
        /// Publish the bytes as they are instead of as a JSON string
        #[arg(long)]
        raw: bool,
    },

    /// Print the messages published to a topic, until Ctrl-C or --count
    Sub {
        /// The topic
        topic: String,
        /// Stop after this many messages
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },

    /// Talk on a channel: each line of stdin is sent, messages from the peer are printed
    Chat {
        /// The channel
        channel: String,
        /// Take the other side (roles swapped), as the second peer of a conversation
        #[arg(long)]
        listen: bool,
    },

    /// Measure throughput and latency: push messages to a fresh queue and consume them
    Bench {
        /// Run on the embedded in-memory store instead of Redis
        #[arg(long)]
        memory: bool,
        /// How many messages
        #[arg(short = 'n', long, value_name = "N", default_value_t = 10_000)]
        messages: u64,
        /// Bytes per message (at least 8: the send time travels in the message)
        #[arg(long, value_name = "BYTES", default_value_t = 128)]
        size: usize,
        /// Consume at least once (acknowledge each message)
        #[arg(long)]
        reliable: bool,
    },
}

/// What to do with dead letters.
#[derive(Debug, Subcommand)]
pub(crate) enum DlqCommand {
    /// List dead letters (with reason and delivery count) without removing them
    Ls {
        /// The queue whose dead letters to list
        queue: String,
        /// How many to show
        #[arg(short = 'n', long = "count", value_name = "N", default_value_t = 20)]
        count: u32,
        /// Start after the dead letter with this id (paging)
        #[arg(long, value_name = "ID")]
        after: Option<u64>,
    },
    /// Move dead letters back to their queue with a fresh delivery count: all, or by --id
    Redrive {
        /// The queue whose dead letters to move back
        queue: String,
        /// Only this dead letter (repeat for several)
        #[arg(long = "id", value_name = "ID")]
        ids: Vec<u64>,
    },
}
