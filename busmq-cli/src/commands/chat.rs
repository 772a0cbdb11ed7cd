//! `busmq chat CHANNEL [--listen]`: a channel peer in the terminal (SPEC C1-C5). Each line of
//! stdin is sent to the other peer, and what it sends is printed; `--listen` takes the other
//! side (roles swapped), so two terminals talk with `chat room` and `chat room --listen`. It
//! does not matter who starts first: messages wait in the channel's queues. End of input or
//! Ctrl-C disconnects (the channel stays open for a new peer); the peer ending the channel
//! ends the chat.

use crate::connect::Connected;
use crate::exit::CliResult;
use crate::output::{Out, body_text};
use crate::signal::stop_requested;
use busmq::ChannelEvent;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

pub(crate) async fn run(connected: Connected, out: &Out, name: String, listen: bool) -> CliResult {
    let channel = connected.bus.channel(&name)?;
    let mut events =
        if listen { channel.listen::<Value>().await? } else { channel.connect::<Value>().await? };
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut input_open = true;
    let (mut sent, mut received) = (Vec::new(), Vec::new());
    let stop = stop_requested();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            line = lines.next_line(), if input_open => match line? {
                Some(line) => {
                    channel.send(&line).await?;
                    sent.push(line);
                }
                None => break,
            },
            event = events.next() => match event {
                None | Some(ChannelEvent::Disconnect) => break,
                Some(ChannelEvent::Message(delivery)) => {
                    if out.json {
                        received.push(delivery.body().clone());
                    } else {
                        out.line(body_text(delivery.body().to_string().as_bytes()))?;
                    }
                    delivery.ack().await?;
                }
                Some(ChannelEvent::Connect) => out.note(format!("* connected to {name:?}")),
                Some(ChannelEvent::RemoteConnect) => out.note("* the peer is here"),
                Some(ChannelEvent::RemoteDisconnect) => out.note("* the peer left"),
                Some(ChannelEvent::End) => {
                    out.note("* the peer ended the channel");
                    input_open = false;
                }
                Some(ChannelEvent::Error(error)) => out.note(format!("warning: {error}")),
                Some(_) => {}
            },
        }
    }
    channel.disconnect().await?;
    if out.json {
        return out.document(&json!({ "channel": name, "sent": sent, "received": received }));
    }
    Ok(())
}
