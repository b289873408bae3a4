/**
 * Watches a versioned document kept in a local file by polling: `listener` hears each version
 * above the last one it heard, once, in order. A failed read is retried on the next poll (the
 * file is replaced by rename, so a read is never torn). Returns the function that stops it.
 */
export function pollVersioned<T extends { readonly version: number }>(
  current: () => Promise<T | undefined>,
  listener: (document: T) => void,
  pollIntervalMs: number,
): () => void {
  let lastVersion = 0;
  let polling = false;
  const poll = async () => {
    if (polling) return;
    polling = true;
    try {
      const document = await current();
      if (document && document.version > lastVersion && timer) {
        lastVersion = document.version;
        listener(document);
      }
    } catch {
      // Retried on the next poll.
    } finally {
      polling = false;
    }
  };
  let timer: NodeJS.Timeout | undefined = setInterval(() => void poll(), pollIntervalMs);
  timer.unref();
  void poll();
  return () => {
    clearInterval(timer);
    timer = undefined;
  };
}
