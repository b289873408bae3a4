import { createEventDecoder, type RejectReason } from '../../core/events/decode-event.ts';
import type { LocalLog } from '../../core/source/local-log.ts';
import type { EventSchema } from '../../core/views/view-definition.ts';
import type { IngestRefusals } from './ingest-refusals.ts';

export interface LineError {
  /** 1-based line number in the request body. */
  readonly line: number;
  readonly reason: RejectReason;
  readonly message: string;
}

export interface IngestResult {
  readonly accepted: number;
  /** Offsets given to the accepted lines, [firstOffset, endOffsetExclusive); absent when none. */
  readonly offsets?: { readonly firstOffset: number; readonly endOffsetExclusive: number };
  /** Lines refused as malformed: not stored, so never in the `rejected` table (see IngestRefusals). */
  readonly rejected: number;
  readonly errors: readonly LineError[];
}

const MAX_ERRORS_REPORTED = 100;

/**
 * `POST /v1/events` in single-node mode: an NDJSON body, one event per line. Each line is
 * validated against the schema with the same decoder the layers use; good lines are appended to
 * the local log and the call resolves only once they are on disk; bad lines are answered with
 * their line number and reason, counted in `refusals`, and do not stop the good ones.
 */
export function createEventIngest(log: LocalLog, schema: EventSchema, refusals?: IngestRefusals) {
  const decode = createEventDecoder(schema);
  return async (body: string): Promise<IngestResult> => {
    const good: Buffer[] = [];
    const errors: LineError[] = [];
    let rejected = 0;
    const lines = body.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (line === '') continue;
      const result = decode(line);
      if (result.ok) {
        good.push(Buffer.from(line));
        continue;
      }
      rejected++;
      refusals?.refused(result.reason);
      if (errors.length < MAX_ERRORS_REPORTED) errors.push({ line: i + 1, reason: result.reason, message: result.message });
    }
    if (good.length === 0) return { accepted: 0, rejected, errors };
    const offsets = await log.append(good);
    return { accepted: good.length, offsets, rejected, errors };
  };
}
