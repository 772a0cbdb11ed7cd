//! `busmq consume QUEUE`: consumes (removes) messages and prints each, until Ctrl-C, `--max`
//! or `--idle`. `--reliable` consumes at least once and acknowledges each message only once it
//! is printed, so a message the command could not print is delivered again. Stopping gives
//! back what was taken and not printed (busmq's consumers do, SPEC Q12).

use crate::connect::Connected;
use crate::exit::{CliError, CliResult};
use crate::output::{MessageJson, Out, message_line};
use crate::signal::stop_requested;
use busmq::{ConsumeOptions, DEFAULT_PREFETCH, ReliableOptions};
use futures::StreamExt;
use std::time::Duration;

/// What `consume` was asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub(crate) max: Option<u64>,
    pub(crate) reliable: bool,
    pub(crate) idle: Option<Duration>,
}

pub(crate) async fn run(connected: Connected, out: &Out, name: String, o: Options) -> CliResult {
    let queue = connected.bus.queue(&name)?;
    queue.attach().await?;
    // Taking no more than asked for: what is taken and not printed would only be given back.
    let prefetch =
        o.max.map_or(DEFAULT_PREFETCH, |max| max.min(u64::from(DEFAULT_PREFETCH)) as u32);
    let mut options = ConsumeOptions::new().prefetch(prefetch.max(1));
    if let Some(max) = o.max {
        options = options.max(max);
    }
    if o.reliable {
        options = options.reliable(ReliableOptions::default());
    }
    let mut consumer = queue.consume_raw(options).await?;
    let mut printed: Vec<MessageJson> = Vec::new();
    let stop = stop_requested();
    tokio::pin!(stop);
    let outcome: CliResult = loop {
        let idle = async {
            match o.idle {
                Some(idle) => tokio::time::sleep(idle).await,
                None => std::future::pending().await,
            }
        };
        let delivery = tokio::select! {
            _ = &mut stop => break Ok(()),
            _ = idle => break Ok(()),
            next = consumer.next() => next,
        };
        let Some(delivery) = delivery else { break Ok(()) };
        let delivery = match delivery {
            Ok(delivery) => delivery,
            Err(error) => break Err(CliError::from(error)),
        };
        if out.json {
            printed.push(MessageJson::new(delivery.id(), delivery.payload(), delivery.headers()));
        } else if let Err(error) =
            out.line(message_line(delivery.id(), delivery.payload(), delivery.headers()))
        {
            break Err(error);
        }
        if let Err(error) = delivery.ack().await {
            break Err(error.into());
        }
    };
    consumer.stop().await;
    drop(consumer);
    let detached = queue.detach().await;
    outcome?;
    detached?;
    if out.json {
        return out.messages(&name, &printed);
    }
    Ok(())
}
