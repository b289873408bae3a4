// Worker-thread bootstrap for WorkerSegmentSink: loads the TypeScript entry through tsx, as
// cli/lambda.mjs does for the process, so workers run from a checkout with no build step.
import { register } from 'tsx/esm/api';

register();
await import('./segment-sink-worker.ts');
