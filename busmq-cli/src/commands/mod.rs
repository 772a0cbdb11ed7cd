//! One module per command; this one dispatches and holds what they share: a bus connected for
//! the length of one command, disconnected again whatever the command's outcome (so that
//! attached queues are detached and consumers give back what they hold).

mod bench;
mod chat;
mod consume;
mod dlq;
mod ls;
mod peek;
mod pubsub;
mod push;
mod request;
mod stat;
mod tail;

use crate::cli::{Command, DlqCommand};
use crate::connect::{Connected, Target};
use crate::exit::{CliError, CliResult};
use crate::output::Out;
use busmq::Queue;
use std::future::Future;

/// Runs one command.
pub(crate) async fn run(command: Command, target: &Target, out: &Out) -> CliResult {
    match command {
        Command::Ls => session(target, |c| ls::run(c, out)).await,
        Command::Stat { queue } => session(target, |c| stat::run(c, out, queue)).await,
        Command::Peek { queue, from, id, count } => {
            session(target, |c| peek::run(c, out, queue, peek::start(from, id), count)).await
        }
        Command::Tail { queue, count, interval } => {
            session(target, |c| tail::run(c, out, queue, count, interval)).await
        }
        Command::Push { queue, messages, raw, headers, ttl } => {
            let options = push::Options { raw, headers: crate::headers::from_pairs(headers), ttl };
            session(target, |c| push::run(c, out, queue, messages, options)).await
        }
        Command::Request { service, body, raw, headers } => {
            let headers = crate::headers::from_pairs(headers);
            let options = request::Options { raw, headers, timeout: target.timeout };
            session(target, |c| request::run(c, out, service, body, options)).await
        }
        Command::Consume { queue, max, reliable, idle } => {
            let options = consume::Options { max, reliable, idle };
            session(target, |c| consume::run(c, out, queue, options)).await
        }
        Command::Dlq { command: DlqCommand::Ls { queue, count, after } } => {
            session(target, |c| dlq::list(c, out, queue, count, after)).await
        }
        Command::Dlq { command: DlqCommand::Redrive { queue, ids } } => {
            session(target, |c| dlq::redrive(c, out, queue, ids)).await
        }
        Command::Pub { topic, message, raw } => {
            session(target, |c| pubsub::publish(c, out, topic, message, raw)).await
        }
        Command::Sub { topic, count } => {
            session(target, |c| pubsub::subscribe(c, out, topic, count)).await
        }
        Command::Chat { channel, listen } => {
            session(target, |c| chat::run(c, out, channel, listen)).await
        }
        Command::Bench { memory, messages, size, reliable } => {
            let options = bench::Options { messages, size, reliable };
            if memory {
                bench::on_memory(out, options).await
            } else {
                session(target, |c| bench::run(c, out, options)).await
            }
        }
    }
}

/// Connects, runs `command`, and disconnects whatever the command's outcome.
async fn session<F, Fut>(target: &Target, command: F) -> CliResult
where
    F: FnOnce(Connected) -> Fut,
    Fut: Future<Output = CliResult>,
{
    let connected = target.connect().await?;
    let bus = connected.bus.clone();
    let result = command(connected).await;
    let disconnected = bus.disconnect().await;
    result?;
    disconnected.map_err(CliError::from)
}

/// A queue handle, and exit 6 when the queue does not exist (for the commands that only
/// look).
async fn existing(connected: &Connected, name: &str) -> CliResult<Queue> {
    let queue = connected.bus.queue(name)?;
    if !queue.exists().await? {
        return Err(CliError::not_found(name, &connected.namespace));
    }
    Ok(queue)
}
