// Worker-thread bootstrap of the Kafka fetch thread (kafka-fetch-thread.ts): loads the TypeScript
// entry through tsx, as cli/lambda.mjs does for the process, so it runs with no build step.
import { register } from 'tsx/esm/api';

register();
await import('./kafka-fetch-worker.ts');
