import { LambdaError } from '../core/errors/index.ts';

/** A batch run stopped because its leadership term ended (or the layer stopped): not a failure. */
export class BatchRunAborted extends LambdaError {
  constructor(reason: unknown) {
    super(`batch run stopped: ${reason instanceof Error ? reason.message : String(reason)}`, { cause: reason });
  }
}
