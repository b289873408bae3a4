import type { DuckDBConnection } from '@duckdb/node-api';
import { copyFile, link, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import type { BatchManifest } from '../core/batch/batch-manifest.ts';
import { batchManifestSchema, sameCuts } from '../core/batch/batch-manifest.ts';
import { describeQuery } from '../core/duckdb/column-types.ts';
import { LambdaError } from '../core/errors/index.ts';
import { fsyncPath, tempPathFor } from '../core/storage/durable-files.ts';
import { conformRelationSql, emptyRelationSql, masterRelationSql, type SegmentSelection } from '../core/storage/master-relation-sql.ts';
import { REJECTED_COLUMNS } from '../core/storage/segment-columns.ts';
import { readMasterChains, rejectedFilesOf } from '../core/storage/segment-chain.ts';
import type { StorageLayout } from '../core/storage/storage-layout.ts';
import { quoteIdent, quoteLiteral } from '../core/sql/identifiers.ts';
import type { CompiledView } from '../core/views/view-compiler.ts';
import type { EventSchema } from '../core/views/view-definition.ts';
import { batchCutExclusive, regressedCuts } from './batch-cut.ts';
import { batchPartialSql, choosePartialPlan } from './batch-partial-sql.ts';
import { deltaRelationSql, deltaShare, extendableStateFile, type SegmentRange } from './delta-source.ts';

/** One view's step of a run, as told to a RecomputeListener before the first view starts. */
export interface RecomputeStep {
  readonly view: string;
  /** About how much of the run's reading it does: 1 for a view computed over the whole history. */
  readonly weight: number;
  /** Extended from the previous version's state with the newer events only. */
  readonly extended: boolean;
}

/** Hears where a run is (progress reports); called synchronously, must not throw. */
export interface RecomputeListener {
  planned(steps: readonly RecomputeStep[]): void;
  viewStarted(view: string): void;
  viewDone(view: string): void;
}

export interface RecomputeInput {
  /** A connection with the SQL macros installed (installSqlMacros). */
  readonly connection: DuckDBConnection;
  readonly layout: StorageLayout;
  readonly topic: string;
  readonly schema: EventSchema;
  readonly views: readonly CompiledView[];
  readonly blockSize: number;
  /** The version to write; its directory must not exist yet. */
  readonly version: number;
  readonly producedBy: string;
  /** The version serving now: cuts may not go below its cuts. */
  readonly previous?: BatchManifest;
  /** Aborts between steps (e.g. when leadership is lost). */
  readonly signal?: AbortSignal;
  /**
   * Extend the views `previous` holds as defined with the events above its cuts, instead of
   * recomputing them over the whole history (see extendableStateFile). For backfill runs, which
   * exist for the views that changed: the others then cost only their new events. Scheduled runs
   * leave it off and recompute everything, so that a wrong state never outlives the next one.
   */
  readonly extendUnchanged?: boolean;
  /**
   * Keep `previous`'s cuts instead of advancing them to what is archived (with `extendUnchanged`:
   * a backfill run). The views `previous` holds as defined then have nothing newer to extend with:
   * their state files are taken as they are (hard-linked, so retention of the old version leaves
   * them), and the run costs only the views it backfills, over the history below those cuts. The
   * serving nodes' realtime state covers every offset at or above them, so the new views are exact
   * at once; the next scheduled run moves the cuts on.
   */
  readonly keepCuts?: boolean;
  readonly listener?: RecomputeListener;
}

/** The master-dataset files below the cuts, and the cuts, read once at the start of a run. */
export interface BatchInput {
  readonly cuts: Record<string, number>;
  readonly events: SegmentSelection;
  readonly rejected: SegmentSelection;
  /** The event segments of `events`, with their offsets (for a delta above older cuts). */
  readonly eventSegments: readonly SegmentRange[];
}

/**
 * Chooses, per partition, the chain's files below the block-aligned cut, or below `cutsAtMost`'s
 * cut of the partition when that is lower (none there: the partition is left out).
 */
export async function selectBatchInput(layout: StorageLayout, topic: string, blockSize: number, cutsAtMost?: Readonly<Record<string, number>>): Promise<BatchInput> {
  const cuts: Record<string, number> = {};
  const events = { wholeFiles: [] as string[], cutFiles: [] as SegmentSelection['cutFiles'][number][] };
  const rejected = { wholeFiles: [] as string[], cutFiles: [] as SegmentSelection['cutFiles'][number][] };
  const eventSegments: SegmentRange[] = [];
  for (const chain of (await readMasterChains(layout, topic)).values()) {
    const archivedCut = batchCutExclusive(chain, blockSize);
    const cutExclusive = cutsAtMost ? Math.min(archivedCut, cutsAtMost[String(chain.partition)] ?? 0) : archivedCut;
    if (cutExclusive === 0) continue;
    cuts[String(chain.partition)] = cutExclusive;
    const rejectedFiles = await rejectedFilesOf(layout, chain);
    for (const item of chain.items) {
      if (item.kind !== 'segment' || item.firstOffset >= cutExclusive) continue;
      const whole = item.endOffsetExclusive <= cutExclusive;
      eventSegments.push({ path: item.path, partition: chain.partition, firstOffset: item.firstOffset, endOffsetExclusive: item.endOffsetExclusive });
      const rejectedFile = rejectedFiles.get(item);
      if (whole) events.wholeFiles.push(item.path);
      else events.cutFiles.push({ path: item.path, partition: chain.partition, cutExclusive });
      if (rejectedFile && whole) rejected.wholeFiles.push(rejectedFile);
      else if (rejectedFile) rejected.cutFiles.push({ path: rejectedFile, partition: chain.partition, cutExclusive });
    }
  }
  return { cuts, events, rejected, eventSegments };
}

/**
 * Runs every view's partial state (batchPartialSql) over the master dataset below the cuts and writes
 * batch version N: one Parquet file per view holding the merged partial state per key (what the
 * serving layer loads into `batch__<view>`), and manifest.json. Everything is written into a temp
 * directory that is renamed to `batch/v<N>` only when complete, so a crash or an abort leaves no
 * partial version; the caller publishes the manifest. With `extendUnchanged`, a view the previous
 * version holds as defined is its previous state merged with the partial state of the newer events.
 */
export async function recompute(input: RecomputeInput): Promise<BatchManifest> {
  const startedAt = new Date();
  const { connection, layout } = input;
  const keptCuts = input.keepCuts && input.previous?.topic === input.topic ? input.previous.cuts : undefined;
  const batchInput = await selectBatchInput(layout, input.topic, input.blockSize, keptCuts);
  if (input.previous) {
    const regressed = regressedCuts(input.previous.cuts, batchInput.cuts);
    if (regressed.length > 0) {
      throw new LambdaError(`the master dataset covers less than the serving batch version ${input.previous.version} (${regressed.join('; ')}); were segment files removed?`, {
        context: { topic: input.topic, previousVersion: input.previous.version },
      });
    }
  }
  const source = await conformedSource(connection, input.schema, batchInput.events);
  const finalDir = layout.versionDir(input.version);
  const tempDir = tempPathFor(finalDir);
  await mkdir(tempDir, { recursive: true });
  try {
    const views: BatchManifest['views'] = {};
    const steps = await planSteps(input, batchInput);
    input.listener?.planned(steps.map(({ view, weight, extended }) => ({ view, weight, extended })));
    let delta: string | undefined;
    for (const step of steps) {
      input.signal?.throwIfAborted();
      const view = step.compiled;
      const name = view.definition.name;
      const fileName = `${name}.parquet`;
      input.listener?.viewStarted(name);
      if (step.previousFile && sameCuts(input.previous!.cuts, batchInput.cuts)) {
        // Nothing above the previous cuts to extend with: the previous state is this version's.
        await linkOrCopy(step.previousFile, join(tempDir, fileName));
        views[name] = { definitionHash: view.definitionHash, file: relative(layout.rootDir, join(finalDir, fileName)), rows: input.previous!.views[name]!.rows };
        input.listener?.viewDone(name);
        continue;
      }
      const plan = await choosePartialPlan(connection, layout.rootDir, view, input.previous);
      let state: string;
      if (step.previousFile) {
        delta ??= await conformedRelation(connection, input.schema, deltaRelationSql(input.schema, batchInput.eventSegments, input.previous!.cuts, batchInput.cuts));
        const both = `(SELECT * FROM read_parquet(${quoteLiteral(step.previousFile)}) UNION ALL BY NAME (${batchPartialSql(view, input.schema, delta, plan)}))`;
        state = view.mergeSql(both);
      } else state = batchPartialSql(view, input.schema, source, plan);
      const result = await connection.runAndReadAll(`COPY (${state}) TO ${quoteLiteral(join(tempDir, fileName))} (FORMAT parquet)`);
      await fsyncPath(join(tempDir, fileName));
      views[name] = { definitionHash: view.definitionHash, file: relative(layout.rootDir, join(finalDir, fileName)), rows: Number(result.getRows()[0]?.[0] ?? 0) };
      input.listener?.viewDone(name);
    }
    input.signal?.throwIfAborted();
    // Below the same cuts the master dataset holds the same events (segments are only ever added
    // above them, or compacted without change): a backfill at kept cuts need not count them again.
    const eventsRead =
      keptCuts && sameCuts(keptCuts, batchInput.cuts)
        ? input.previous!.eventsRead
        : (await countRows(connection, source)) + (await countRows(connection, rejectedSource(batchInput.rejected)));
    const finishedAt = new Date();
    const manifest = batchManifestSchema.parse({
      version: input.version,
      topic: input.topic,
      cuts: batchInput.cuts,
      blockSize: input.blockSize,
      location: relative(layout.rootDir, finalDir),
      views,
      eventsRead,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      durationMs: finishedAt.getTime() - startedAt.getTime(),
      producedBy: input.producedBy,
    });
    await writeFile(join(tempDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    await fsyncPath(join(tempDir, 'manifest.json'));
    await fsyncPath(tempDir);
    input.signal?.throwIfAborted();
    await commitDir(tempDir, finalDir);
    return manifest;
  } catch (error) {
    await rm(tempDir, { recursive: true, force: true });
    throw error;
  }
}

interface PlannedStep extends RecomputeStep {
  readonly compiled: CompiledView;
  readonly previousFile?: string;
}

/** Which views are extended from the previous version and which recomputed, with their weights. */
async function planSteps(input: RecomputeInput, batchInput: BatchInput): Promise<PlannedStep[]> {
  const share = input.previous ? Math.max(0.01, deltaShare(input.previous.cuts, batchInput.cuts)) : 1;
  const steps: PlannedStep[] = [];
  for (const compiled of input.views) {
    const previousFile = input.extendUnchanged ? await extendableStateFile(input.layout.rootDir, input.previous, input.topic, compiled) : undefined;
    steps.push({ view: compiled.definition.name, compiled, extended: previousFile !== undefined, weight: previousFile ? share : 1, ...(previousFile ? { previousFile } : {}) });
  }
  return steps;
}

async function conformedSource(connection: DuckDBConnection, schema: EventSchema, selection: SegmentSelection): Promise<string> {
  return conformedRelation(connection, schema, masterRelationSql(schema, selection));
}

async function conformedRelation(connection: DuckDBConnection, schema: EventSchema, relation: string): Promise<string> {
  const present = await describeQuery(connection, `SELECT * FROM ${relation}`);
  return conformRelationSql(relation, schema, present);
}

function rejectedSource(selection: SegmentSelection): string {
  if (selection.wholeFiles.length === 0 && selection.cutFiles.length === 0) return emptyRelationSql(REJECTED_COLUMNS);
  const parts: string[] = [];
  const list = (files: readonly string[]) => `read_parquet([${files.map(quoteLiteral).join(', ')}])`;
  if (selection.wholeFiles.length > 0) parts.push(`SELECT _partition, _offset FROM ${list(selection.wholeFiles)}`);
  if (selection.cutFiles.length > 0) {
    const below = selection.cutFiles.map((f) => `(_partition = ${f.partition} AND _offset < ${f.cutExclusive})`);
    parts.push(`SELECT _partition, _offset FROM ${list(selection.cutFiles.map((f) => f.path))} WHERE ${below.join(' OR ')}`);
  }
  return `(${parts.join(' UNION ALL ')})`;
}

async function countRows(connection: DuckDBConnection, relation: string): Promise<number> {
  const result = await connection.runAndReadAll(`SELECT count(*) FROM ${relation} AS ${quoteIdent('r')}`);
  return Number(result.getRows()[0]?.[0] ?? 0);
}

/** A hard link where the filesystem allows one (the same file: nothing written), else a copy. */
async function linkOrCopy(source: string, target: string): Promise<void> {
  try {
    await link(source, target);
  } catch {
    await copyFile(source, target);
    await fsyncPath(target);
  }
}

/** Renames the finished temp directory to the version's name; fails if that version exists. */
async function commitDir(tempDir: string, finalDir: string): Promise<void> {
  try {
    await rename(tempDir, finalDir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') {
      throw new LambdaError(`batch version directory ${basename(finalDir)} already exists (another batch master wrote it); the next run takes a higher version`, {
        retriable: true,
        context: { dir: finalDir },
      });
    }
    throw error;
  }
  await fsyncPath(join(finalDir, '..'));
}
