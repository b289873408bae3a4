/**
 * Polls `condition` until it holds; throws, naming `what`, once `timeoutMs` has passed. Tests
 * wait for what a real server or process does (a consumer group forming, a session expiring)
 * this way rather than sleeping a fixed time. `what` may be a function, to say in the error what
 * was seen last.
 */
export async function waitFor(what: string | (() => string), condition: () => boolean | Promise<boolean>, timeoutMs = 20_000, pollMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
