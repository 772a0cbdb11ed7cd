//! Quickstart: a producer, a consumer and a channel conversation on the embedded in-memory
//! store, printing what they exchange. Run it with `cargo run --example quickstart`.
//!
//! Two buses over one `Memory` behave like two processes sharing one Redis; swap
//! `Memory::new().store()` for a `busmq::redis::RedisStore` (feature `redis`) and nothing else changes.
#![allow(clippy::print_stdout, reason = "an example shows its work on the terminal")]

use busmq::memory::Memory;
use busmq::{Bus, ChannelEvent, ConsumeOptions};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug)]
struct Job {
    id: u32,
    task: String,
}

#[tokio::main]
async fn main() -> busmq::Result<()> {
    let memory = Memory::new();
    let producer_bus = Bus::new(memory.store());
    let worker_bus = Bus::new(memory.store());
    producer_bus.connect().await?;
    worker_bus.connect().await?;

    // A queue: the producer pushes three jobs, the worker consumes them in order.
    let jobs = producer_bus.queue("jobs")?;
    let existed = jobs.attach().await?;
    println!("producer: attached to queue \"jobs\" (existed before: {existed})");
    for (id, task) in [(1, "resize image"), (2, "send email"), (3, "update index")] {
        let message_id = jobs.push(&Job { id, task: task.into() }).await?;
        println!("producer: pushed job {id} ({task}) as message {message_id}");
    }
    let worker = worker_bus.queue("jobs")?;
    worker.attach().await?;
    let mut deliveries = worker.consume_with::<Job>(ConsumeOptions::new().max(3)).await?;
    while let Some(delivery) = deliveries.next().await {
        let delivery = delivery?;
        println!("worker:   got message {} -> {:?}", delivery.id(), delivery.body());
    }
    println!(
        "worker:   consumed {} messages, {} left in the queue",
        worker.consumed(),
        worker.count().await?
    );

    // A channel: the server listens, the client connects, and they talk both ways.
    let server = worker_bus.channel("chat")?;
    let client = producer_bus.channel("chat")?;
    let mut server_events = server.listen::<String>().await?;
    let mut client_events = client.connect::<String>().await?;
    let serve = async {
        while let Some(event) = server_events.next().await {
            match event {
                ChannelEvent::RemoteConnect => println!("server:   a client connected"),
                ChannelEvent::Message(message) => {
                    println!("server:   received {:?}", message.body());
                    server.send(&format!("echo: {}", message.body())).await?;
                }
                ChannelEvent::End => println!("server:   the client ended the channel"),
                ChannelEvent::Error(error) => return Err(error),
                _ => {}
            }
        }
        Ok(())
    };
    let talk = async {
        let mut lines = ["hello", "how are you?"].into_iter();
        while let Some(event) = client_events.next().await {
            match event {
                ChannelEvent::RemoteConnect => {
                    println!("client:   the server is there");
                    client.send(&lines.next().unwrap_or_default()).await?;
                }
                ChannelEvent::Message(message) => {
                    println!("client:   received {:?}", message.body());
                    match lines.next() {
                        Some(line) => client.send(&line).await.map(|_| ())?,
                        None => client.end().await?,
                    }
                }
                ChannelEvent::Error(error) => return Err(error),
                _ => {}
            }
        }
        Ok(())
    };
    let (served, talked) = tokio::join!(serve, talk);
    served?;
    talked?;

    // Pub/sub: every live subscriber gets what is published.
    let news = worker_bus.pubsub("news")?;
    let mut subscription = news.subscribe::<String>().await?;
    producer_bus.pubsub("news")?.publish(&"busmq works").await?;
    if let Some(message) = subscription.next().await {
        println!("subscriber: {:?}", message?);
    }

    producer_bus.disconnect().await?;
    worker_bus.disconnect().await?;
    println!("done");
    Ok(())
}
