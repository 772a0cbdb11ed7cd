// node busmq 3.1.0 channel round trip: two buses in one process (as busmq-rs's channel-rtt),
// one peer sends 100 bytes and waits for the echo; WARM unmeasured then N measured.
const Bus = require('busmq');
const url = process.argv[2], N = +process.argv[3] || 10000, WARM = 200;
const payload = 'x'.repeat(100);
function mk() { return new Promise(r => { const b = Bus.create({redis: [url]}); b.on('online', () => r(b)); b.on('error', e => console.error('bus error', e)); b.connect(); }); }
(async () => {
  const [a, b] = await Promise.all([mk(), mk()]);
  const name = 'rtt-' + process.pid + '-' + Date.now();
  const ca = a.channel(name), cb = b.channel(name);
  const times = []; let sent = 0, t0 = 0;
  await new Promise(r => {
    let n = 0; cb.on('connect', () => { if (++n === 2) r(); }); ca.on('connect', () => { if (++n === 2) r(); });
    cb.on('message', m => cb.send(m));
    cb.listen(); ca.connect();
  });
  await new Promise(r => {
    ca.on('message', () => {
      const dt = Number(process.hrtime.bigint() - t0) / 1000;
      if (sent > WARM) times.push(dt);
      if (sent >= WARM + N) return r();
      sent++; t0 = process.hrtime.bigint(); ca.send(payload);
    });
    sent++; t0 = process.hrtime.bigint(); ca.send(payload);
  });
  times.sort((x, y) => x - y);
  const q = p => times[Math.min(times.length - 1, Math.floor(p * times.length))].toFixed(0);
  console.log(`node-busmq-3.1.0 channel rtt n=${times.length} p50 ${q(0.5)} us p99 ${q(0.99)} us p99.9 ${q(0.999)} us`);
  process.exit(0);
})();
