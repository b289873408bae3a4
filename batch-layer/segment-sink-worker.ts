/**
 * Worker-thread entry of WorkerSegmentSink: a LocalSegmentSink with its own DuckDB, driven by
 * messages from the archiver's thread and reporting its SinkEvents back.
 */
import { DuckDBInstance } from '@duckdb/node-api';
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../core/observability/logger.ts';
import { StorageLayout } from '../core/storage/storage-layout.ts';
import { LocalSegmentSink, type SinkEvent } from './segment-sink.ts';
import { SegmentWriter } from './segment-writer.ts';
import type { SinkReply, SinkRequest, SinkWorkerData } from './worker-segment-sink.ts';
import { CoordinationError } from '../core/errors/index.ts';

const data = workerData as SinkWorkerData;
const port = parentPort!;
const logger = createLogger(`archiver-sink-${data.index}`, data.logLevel ? { level: data.logLevel } : {});
const layout = new StorageLayout(data.storageDir);
// One DuckDB thread: the worker's statements are small (a segment's append, its COPY), the
// archiver already runs a sink worker per core, and DuckDB's own threads only add scheduling work.
const duckdb = await DuckDBInstance.create(':memory:', { threads: '1' });
const fences = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
let nextFenceId = 1;
/** The archiver's thread holds the ZooKeeper session that answers whether a partition is still ours. */
const fence = (partition: number) =>
  new Promise<void>((resolve, reject) => {
    const fenceId = nextFenceId++;
    fences.set(fenceId, { resolve, reject });
    port.postMessage({ op: 'fence', fenceId, partition } satisfies SinkReply);
  });
const writer = await SegmentWriter.create({ duckdb, layout, topic: data.topic, schema: data.schema, concurrency: data.concurrency, ...(data.fenced ? { fence } : {}) });
const sink = new LocalSegmentSink(
  writer,
  { layout, schema: data.schema, logger, ...(data.flush ? { flush: data.flush } : {}), compaction: data.compaction },
  (event: SinkEvent) => port.postMessage({ op: 'event', event }),
);

let duckdbClosed = false;
/** Closing and halting may overlap (a halt while a close waits on storage): the database is closed once. */
function closeDuckDB(): void {
  if (duckdbClosed) return;
  duckdbClosed = true;
  duckdb.closeSync();
}

async function handle(request: SinkRequest): Promise<void> {
  switch (request.op) {
    case 'fenced': {
      const waiter = fences.get(request.fenceId);
      fences.delete(request.fenceId);
      if (request.error === undefined) waiter?.resolve();
      else waiter?.reject(new CoordinationError(request.error));
      return;
    }
    case 'open':
      sink.open(request.partition, request.startOffset);
      return;
    case 'add':
      sink.add(request.partition, request.packed);
      return;
    case 'gap':
      sink.gap(request.partition, request.toOffsetExclusive);
      return;
    case 'release':
      await sink.release(request.partition);
      return;
    case 'flush':
      await sink.flush();
      return;
    case 'compact':
      await sink.compact();
      return;
    case 'close':
      await sink.close();
      await writer.close();
      closeDuckDB();
      return;
    case 'halt':
      // Nothing is written any more: a publish waiting for the fence is refused, the statements
      // in flight are interrupted and waited for, so the thread can be torn down safely.
      for (const waiter of fences.values()) waiter.reject(new CoordinationError('the archiver sink is halting'));
      fences.clear();
      await writer.halt();
      closeDuckDB();
      return;
  }
}

port.on('message', (request: SinkRequest) => {
  handle(request).then(
    () => 'id' in request && port.postMessage({ op: 'done', id: request.id }),
    (error: unknown) => 'id' in request && port.postMessage({ op: 'done', id: request.id, error: error instanceof Error ? error.message : String(error) }),
  );
});
port.postMessage({ op: 'ready' });
