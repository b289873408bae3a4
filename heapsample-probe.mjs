import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
const session = new Session(); session.connect();
setTimeout(async () => {
  await session.post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  setTimeout(async () => {
    const { profile } = await session.post('HeapProfiler.stopSampling');
    writeFileSync(`/tmp/hp/alloc-${threadId}.json`, JSON.stringify(profile));
    process.stderr.write('HEAPSAMPLE written\n');
  }, 10000).unref();
}, 14000).unref();
