/**
 * The root of the project's error tree. Every error says whether retrying the same operation can
 * help (`retriable`), and the retry helpers decide from that alone, as kafkajs does.
 */
export class LambdaError extends Error {
  readonly retriable: boolean;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(
    message: string,
    options: { retriable?: boolean; context?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.retriable = options.retriable ?? false;
    this.context = Object.freeze({ ...options.context });
  }
}
