// The rocksdb-native half of `npm run bench -- state`, in its own CommonJS process: two RocksDB
// libraries in one process hang. Batched puts and gets of 200,000 keys, 1,000 a batch.
const RocksDB = require('rocksdb-native');
(async () => {
  const db = new RocksDB(process.argv[2]);
  await db.ready();
  const N = 200000;
  let t = performance.now();
  for (let s = 0; s < N; s += 1000) {
    const w = db.write();
    for (let i = s; i < s + 1000; i++) w.put(Buffer.from('k' + i), Buffer.alloc(8));
    await w.flush();
  }
  console.log('native puts/s', Math.round(N / ((performance.now() - t) / 1000)));
  t = performance.now();
  for (let s = 0; s < N; s += 1000) {
    const r = db.read();
    const ps = [];
    for (let i = s; i < s + 1000; i++) ps.push(r.get(Buffer.from('k' + i)));
    r.flush();
    await Promise.all(ps);
  }
  console.log('native gets/s', Math.round(N / ((performance.now() - t) / 1000)));
  await db.close();
})();
