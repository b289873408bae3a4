#!/usr/bin/env -S node --max-semi-space-size=64
// The `lambda` command. Runs the TypeScript sources directly through tsx, so a checkout works
// after `npm install` with no build step. A young generation of 64 MiB (V8's default is 16): a
// fetch of the Kafka client holds ~100k messages alive across collections, and with the small
// default the collector copied them several times (a fifth of the speed layer's main thread).
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
