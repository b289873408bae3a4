export { BatchLayer, type BatchLayerOptions, type BatchLayerStatus } from './batch-layer.ts';
export { Archiver, type ArchiverOptions, type ArchiverStatus, type ArchiverGap, type ArchiverPartitionStatus, type FlushOptions } from './archiver.ts';
export { recompute, selectBatchInput, type RecomputeInput } from './recompute.ts';
export { BatchScheduler, type BatchRunOutcome } from './batch-scheduler.ts';
export { batchCutExclusive } from './batch-cut.ts';
export { retainVersions, nextVersion, versionsOnDisk } from './version-retention.ts';
export type { CompactionOptions } from './segment-compactor.ts';
