// node busmq 3.1.0, one queue paced at RATE msg/s, push -> message latency (the payload carries
// the push time); two buses in one process, a 1 ms timer tick as busmq-rs's paced-2k (SPIN=1: no sleep).
const Bus = require('busmq');
const url = process.argv[2], RATE = +process.argv[3] || 2000, SECS = +process.argv[4] || 6;
function mk() { return new Promise(r => { const b = Bus.create({redis: [url]}); b.on('online', () => r(b)); b.on('error', e => console.error('bus error', e)); b.connect(); }); }
const now = () => Number(process.hrtime.bigint() / 1000n);
(async () => {
  const [p, c] = await Promise.all([mk(), mk()]);
  const name = 'paced-' + process.pid + '-' + Date.now();
  const qp = p.queue(name), qc = c.queue(name);
  await Promise.all([new Promise(r => { qp.on('attached', r); qp.attach(); }), new Promise(r => { qc.on('attached', r); qc.attach(); })]);
  const total = RATE * SECS, lat = []; let got = 0;
  const done = new Promise(r => qc.on('message', m => { lat.push(now() - +m.slice(0, 16)); if (++got === total) r(); }));
  qc.consume();
  const start = now(); let sent = 0;
  const pad = 'x'.repeat(84);
  const tick = () => {
    const due = Math.min(total, Math.floor((now() - start) * RATE / 1e6) + 1);
    while (sent < due) { qp.push(String(now()).padStart(16, '0') + pad); sent++; }
    if (sent < total) (process.env.SPIN ? setImmediate(tick) : setTimeout(tick, 1));
  };
  tick();
  await done;
  lat.sort((x, y) => x - y);
  const q = f => lat[Math.min(lat.length - 1, Math.floor(f * lat.length))];
  console.log(`node-busmq-3.1.0 paced ${RATE}/s n=${lat.length} p50 ${q(0.5)} us p99 ${q(0.99)} us p99.9 ${q(0.999)} us`);
  process.exit(0);
})();
