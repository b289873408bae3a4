import { join } from 'node:path';

/** A master-dataset segment: the records of one partition with offsets in [firstOffset, endOffsetExclusive). */
export interface SegmentName {
  readonly topic: string;
  readonly partition: number;
  readonly firstOffset: number;
  readonly endOffsetExclusive: number;
}

const OFFSET_DIGITS = 20;
const SEGMENT_FILE = /^(.+)-p(\d+)-(\d{20})-(\d{20})\.parquet$/;

/**
 * Where everything lives under `storage.dir` (DESIGN.md, "Storage"). Names sort by offset, carry
 * the topic, partition and offset range, and are parsed back by the archiver to find where to
 * resume, so the layout is the only record of what has been archived.
 *
 *   master/<topic>/p<partition>/<topic>-p<partition>-<first>-<endExclusive>.parquet
 *   rejected/<topic>/p<partition>/<topic>-p<partition>-<first>-<endExclusive>.parquet
 *   batch/v<version>/<view>.parquet + manifest.json
 *   log/                                   the single-node event log
 */
export class StorageLayout {
  constructor(readonly rootDir: string) {}

  masterDir(topic: string): string {
    return join(this.rootDir, 'master', topic);
  }

  masterPartitionDir(topic: string, partition: number): string {
    return join(this.masterDir(topic), `p${partition}`);
  }

  rejectedDir(topic: string): string {
    return join(this.rootDir, 'rejected', topic);
  }

  rejectedPartitionDir(topic: string, partition: number): string {
    return join(this.rejectedDir(topic), `p${partition}`);
  }

  /** A glob DuckDB's read_parquet expands to every master segment of the topic. */
  masterGlob(topic: string): string {
    return join(this.masterDir(topic), 'p*', '*.parquet');
  }

  rejectedGlob(topic: string): string {
    return join(this.rejectedDir(topic), 'p*', '*.parquet');
  }

  batchDir(): string {
    return join(this.rootDir, 'batch');
  }

  versionDir(version: number): string {
    return join(this.batchDir(), `v${String(version).padStart(8, '0')}`);
  }

  batchViewPath(version: number, view: string): string {
    return join(this.versionDir(version), `${view}.parquet`);
  }

  manifestPath(version: number): string {
    return join(this.versionDir(version), 'manifest.json');
  }

  localLogDir(): string {
    return join(this.rootDir, 'log');
  }

  static segmentFileName(segment: SegmentName): string {
    const pad = (n: number) => String(n).padStart(OFFSET_DIGITS, '0');
    return `${segment.topic}-p${segment.partition}-${pad(segment.firstOffset)}-${pad(segment.endOffsetExclusive)}.parquet`;
  }

  /** The segment a file name describes, or undefined for any other file (temp files included). */
  static parseSegmentFileName(fileName: string): SegmentName | undefined {
    const match = SEGMENT_FILE.exec(fileName);
    if (!match) return undefined;
    const [, topic, partition, first, end] = match;
    return { topic: topic!, partition: Number(partition), firstOffset: Number(first), endOffsetExclusive: Number(end) };
  }
}
