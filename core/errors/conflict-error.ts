import { LambdaError } from './lambda-error.ts';

/**
 * A change written against a version that is no longer current (optimistic concurrency): another
 * change won. Not retriable as is: the caller reads the current state and decides again.
 */
export class ConflictError extends LambdaError {}
