import type { Kafka } from 'kafkajs';
import { readdirSync, readFileSync } from 'node:fs';
import { randomTopicName } from '../harness/index.ts';
import { waitFor } from '../harness/wait-for.ts';

/** What one consuming run measured. */
export interface ConsumeRun {
  /** Events per second, first batch delivered → last event processed. */
  readonly rate: number;
  /** CPU time of this process (all threads) per event, in microseconds. */
  readonly cpuMicrosPerEvent: number;
}

/** CPU time this process (all threads) has used, in microseconds. */
export function cpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

/** Microseconds per clock tick of /proc's CPU times (USER_HZ, 100 on Linux). */
const MICROS_PER_TICK = 10_000;

/** CPU time one thread of this process has used (Linux /proc), in microseconds; undefined once it ended. */
function taskCpuMicros(tid: string): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // Fields 14 and 15 (utime, stime) count from the one after the command name in parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * MICROS_PER_TICK;
  } catch {
    return undefined;
  }
}

/** CPU time of this process's main (JavaScript) thread, in microseconds. */
export function mainThreadCpuMicros(): number {
  return taskCpuMicros(String(process.pid)) ?? 0;
}

/** CPU time per thread of this process, in microseconds, by thread id, with the thread's name. */
export function threadCpuMicros(): Map<string, { name: string; micros: number }> {
  const threads = new Map<string, { name: string; micros: number }>();
  for (const tid of readdirSync('/proc/self/task')) {
    const micros = taskCpuMicros(tid);
    if (micros === undefined) continue;
    const name = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim().replace(/[0-9]+$/, '');
    threads.set(tid, { name, micros });
  }
  return threads;
}

/**
 * The baseline of the speed and archiver benches: kafkajs reading `events` records of the topic
 * from the beginning (its own group, no commits), each value parsed with JSON.parse, or with
 * `decode` when given, and nothing else. The benched code reads with the same kafkajs settings.
 */
export async function kafkajsBaselineRun(kafka: Kafka, topic: string, events: number, decode?: (raw: Buffer) => unknown): Promise<ConsumeRun> {
  const consumer = kafka.consumer({ groupId: randomTopicName('bench-baseline'), maxBytesPerPartition: 4 * 1024 * 1024 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let seen = 0;
  let firstAt = 0;
  let doneAt = 0;
  let checksum = 0;
  let cpuAtFirst = 0;
  let cpuAtDone = 0;
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      if (!firstAt) {
        firstAt = performance.now();
        cpuAtFirst = cpuMicros();
      }
      if (decode) for (const message of batch.messages) checksum += decode(message.value!) ? 1 : 0;
      else for (const message of batch.messages) checksum += (JSON.parse(message.value!.toString()) as { amount: number }).amount;
      seen += batch.messages.length;
      if (seen >= events && !doneAt) {
        doneAt = performance.now();
        cpuAtDone = cpuMicros();
      }
    },
  });
  await waitFor('the baseline consumer', () => doneAt > 0, 120_000, 5);
  await consumer.disconnect();
  if (!(checksum > 0)) throw new Error('baseline consumed nothing');
  return { rate: (events / (doneAt - firstAt)) * 1000, cpuMicrosPerEvent: (cpuAtDone - cpuAtFirst) / events };
}
