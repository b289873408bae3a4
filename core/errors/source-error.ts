import { LambdaError } from './lambda-error.ts';

/** A failure reading from or writing to the event source (Kafka or the local log). */
export class SourceError extends LambdaError {}
