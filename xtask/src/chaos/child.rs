//! `xtask chaos-worker`: a consumer in its own process, so that the checker can kill it with
//! SIGKILL. It prints `D <seq> <delivery count> <µs since the Unix epoch>` for every delivery
//! and `A <seq> <delivery count> <µs>` just before acknowledging it, flushing each (so that
//! nothing it processed goes unrecorded, and the times are when things happened here, not when
//! the parent read them), and exits when its standard input closes (the parent is gone).

use super::connect::{attach, consume_options, online_bus, store};
use super::history::unix_us;
use futures::StreamExt;
use std::io::Write;
use std::time::Duration;

struct Options {
    url: String,
    namespace: String,
    queue: String,
    reliable: bool,
    wait: bool,
    /// Work on each message as the keyed mode's consumers do (`schedule::keyed_work`).
    keyed: bool,
    /// Keep several acks in flight, as the batched mode's consumers do (`batched::consume`).
    batched: bool,
    visibility: Duration,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        url: String::new(),
        namespace: String::new(),
        queue: String::new(),
        reliable: false,
        wait: false,
        keyed: false,
        batched: false,
        visibility: Duration::from_secs(30),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--url" => o.url = value()?,
            "--namespace" => o.namespace = value()?,
            "--queue" => o.queue = value()?,
            "--visibility-ms" => {
                let v = value()?;
                o.visibility =
                    Duration::from_millis(v.parse().map_err(|_| format!("{v:?} is not a number"))?);
            }
            "--reliable" => o.reliable = true,
            "--wait" => o.wait = true,
            "--keyed" => o.keyed = true,
            "--batched" => o.batched = true,
            other => return Err(format!("chaos-worker: unknown option {other:?}")),
        }
    }
    if o.url.is_empty() || o.namespace.is_empty() || o.queue.is_empty() {
        return Err("chaos-worker needs --url, --namespace and --queue".into());
    }
    Ok(o)
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    runtime.block_on(consume(options))
}

async fn consume(o: Options) -> Result<(), String> {
    let bus = online_bus(store(&o.url, &o.namespace, o.wait)?).await?;
    let queue = bus.queue(&o.queue).map_err(|e| e.to_string())?;
    attach(&queue).await?;
    let mut stream = queue
        .consume_with::<u64>(consume_options(o.reliable, o.visibility))
        .await
        .map_err(|e| e.to_string())?;
    if o.batched {
        super::batched::consume(
            &mut stream,
            || Duration::ZERO,
            |seq, deliveries| report('D', seq, deliveries),
            |seq, deliveries| report('A', seq, deliveries),
        )
        .await?;
    } else {
        while let Some(item) = stream.next().await {
            let Ok(delivery) = item else { continue };
            let (seq, deliveries) = (*delivery.body(), delivery.deliveries());
            report('D', seq, deliveries)?;
            if o.keyed {
                tokio::time::sleep(super::schedule::keyed_work(seq)).await;
            }
            if o.reliable {
                report('A', seq, deliveries)?;
                let _ = delivery.ack().await;
            }
        }
    }
    Err("the consumer stream ended by itself (a silent stop)".into())
}

/// Prints one line (`D` for a delivery, `A` for an ack about to be sent) and flushes it.
fn report(kind: char, seq: u64, deliveries: u32) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{kind} {seq} {deliveries} {}", unix_us())
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))
}
