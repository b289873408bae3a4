import type { Kafka } from 'kafkajs';
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
