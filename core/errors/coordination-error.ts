import { LambdaError } from './lambda-error.ts';

/** A ZooKeeper failure: connection loss (retriable), session expiry or lost leadership (not). */
export class CoordinationError extends LambdaError {}
