import { LambdaError } from '../errors/index.ts';

/**
 * `work`, or a retriable LambdaError naming `what` once `timeoutMs` has passed (work goes on
 * unobserved: the caller decides what to do about it, e.g. terminate a worker thread).
 */
export async function withTimeout<T>(work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new LambdaError(`${what} did not finish within ${timeoutMs} ms`, { retriable: true, context: { timeoutMs } })), timeoutMs);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
