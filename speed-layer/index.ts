export { SpeedLayer, type BatchSwap, type RealtimeListener, type RealtimeViewsEditor, type SpeedLayerOptions, type SpeedLayerStatus } from './speed-layer.ts';
export type { StagedFill } from './realtime-state.ts';
export type { PartitionStatus } from './partition-progress.ts';
export type { MicroBatchStats } from './speed-metrics.ts';
export { REJECTED_NOT_KEPT_TABLE, REJECTED_REALTIME_TABLE } from './rejected-records.ts';
