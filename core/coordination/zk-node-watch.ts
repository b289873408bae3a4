import type { Logger } from '../observability/logger.ts';
import { retry } from '../retry/retry.ts';
import type { ZkClient } from './zk-client.ts';
import type { ZkSession } from './zk-session.ts';

/**
 * Follows one znode's data: `onData` gets its content now (if it exists) and after every change,
 * re-armed after each one-shot watch, after a reconnection and on a new session. One read runs at
 * a time; a change seen meanwhile triggers one more read, so the last state is never missed
 * (intermediate ones may be). A failed read is retried with backoff until it works or `stop`.
 * `onMissing`, when given, hears that the node does not exist (or is empty) at a read.
 */
export function watchZnode(session: ZkSession, path: string, onData: (data: Buffer) => void, logger: Logger, onMissing?: () => void): () => void {
  let stopped = false;
  const stopping = new AbortController();
  let reading = false;
  let again = false;
  const readAndWatch = async (client: ZkClient): Promise<void> => {
    const node = await client.get(path, () => void read());
    if (node === null) {
      // Not there yet: watch for its creation; created meanwhile, read again.
      if ((await client.exists(path, () => void read())) !== null) again = true;
      else if (!stopped) onMissing?.();
      return;
    }
    if (stopped) return;
    if (node.data.length > 0) onData(node.data);
    else onMissing?.();
  };
  const read = async (): Promise<void> => {
    if (stopped) return;
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    try {
      do {
        again = false;
        await retry(() => readAndWatch(session.client), { retries: Infinity, signal: stopping.signal, minDelayMs: 200, maxDelayMs: 5_000 }).catch((error: unknown) => {
          if (!stopped) logger.warn({ err: error, path }, 'cannot read a watched ZooKeeper node; retrying after reconnection');
        });
      } while (again && !stopped);
    } finally {
      reading = false;
    }
  };
  const unsubscribe = session.onEvent((event) => {
    if (event === 'reconnected' || event === 'new-session') void read();
  });
  void read();
  return () => {
    stopped = true;
    stopping.abort();
    unsubscribe();
  };
}
