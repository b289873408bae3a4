import { Kafka, logLevel, type Admin, type Consumer, type Producer } from 'kafkajs';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaApiKey, KafkaErrorCode, KafkaTestBroker, randomTopicName } from '../harness/index.ts';
import { waitFor } from '../harness/wait-for.ts';

const PARTITIONS = 4;

/** One record as the broker stored it: what the producer's ack says and what a consumer sees. */
interface StoredRecord {
  partition: number;
  offset: string;
  key: string;
  value: string;
}

const recordId = (r: { partition: number; offset: string }): string => `${r.partition}:${r.offset}`;

function tcpConnect(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port }, () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
}

describe('KafkaTestBroker with kafkajs', () => {
  const topic = randomTopicName('harness');
  let broker: KafkaTestBroker;
  let kafka: Kafka;
  let producer: Producer;
  let consumer: Consumer;
  let admin: Admin;
  const produced: StoredRecord[] = [];
  const consumed: StoredRecord[] = [];
  let nextMessage = 0;

  /**
   * Sends `count` keyed messages, one request per partition; the offsets come from the acks: the
   * i-th message of a request lands at its baseOffset + i. (One partition per send on purpose:
   * when a send spans several leaders and kafkajs 2.2.4 retries, a late failure of the first
   * attempt can erase another broker's successful ack from the result.)
   */
  async function produce(count: number): Promise<void> {
    const batch = Array.from({ length: count }, () => {
      const n = nextMessage++;
      return { key: `key-${n}`, value: `value-${n}`, partition: n % PARTITIONS };
    });
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const messages = batch.filter((m) => m.partition === partition);
      const acks = await producer.send({ topic, acks: -1, messages });
      expect(acks).toHaveLength(1);
      expect(acks[0]).toMatchObject({ partition, errorCode: 0 });
      messages.forEach((m, i) => produced.push({ ...m, offset: String(BigInt(acks[0]!.baseOffset!) + BigInt(i)) }));
    }
  }

  async function leaderOf(partition: number): Promise<number> {
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    return topics[0]!.partitions.find((p) => p.partitionId === partition)!.leader;
  }

  function expectConsumedExactlyProduced(): void {
    const byId = new Map(produced.map((r) => [recordId(r), r]));
    expect(byId.size).toBe(produced.length);
    // A consumer group delivers at least once (a rebalance replays uncommitted offsets), so
    // exactly-once is by offset: every acked offset arrives, and a replay is the same record.
    for (const r of consumed) expect(r).toEqual(byId.get(recordId(r)));
    expect(new Set(consumed.map(recordId))).toEqual(new Set(byId.keys()));
  }

  beforeAll(async () => {
    broker = await KafkaTestBroker.start({ brokers: 3, topics: [{ name: topic, partitions: PARTITIONS }] });
    kafka = new Kafka({
      clientId: 'kafka-harness-test',
      brokers: [...broker.brokers],
      logLevel: logLevel.NOTHING,
      retry: { initialRetryTime: 100, maxRetryTime: 1_000, retries: 15 },
      connectionTimeout: 1_000,
      requestTimeout: 3_000,
    });
    producer = kafka.producer({ allowAutoTopicCreation: false });
    consumer = kafka.consumer({
      groupId: randomTopicName('group'),
      maxWaitTimeInMs: 100,
      sessionTimeout: 6_000,
      rebalanceTimeout: 6_000,
      heartbeatInterval: 500,
    });
    admin = kafka.admin();
    await Promise.all([producer.connect(), admin.connect()]);
    await consumer.connect();
    let joined = false;
    consumer.on(consumer.events.GROUP_JOIN, () => (joined = true));
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        consumed.push({
          partition,
          offset: message.offset,
          key: message.key!.toString(),
          value: message.value!.toString(),
        });
      },
    });
    await waitFor('the consumer group to form', () => joined, 15_000);
  });

  afterAll(async () => {
    // Every step runs even when an earlier one fails, so no broker process outlives the file.
    await Promise.allSettled([consumer?.disconnect(), producer?.disconnect(), admin?.disconnect()]);
    await broker?.stop();
  });

  it('delivers 2,000 keyed messages to a consumer group at the partitions and offsets the producer acked', async () => {
    for (let sent = 0; sent < 2_000; sent += 250) await produce(250);

    expect(produced).toHaveLength(2_000);
    for (let p = 0; p < PARTITIONS; p++) {
      const offsets = produced.filter((r) => r.partition === p).map((r) => Number(r.offset));
      expect(offsets).toEqual(Array.from({ length: 500 }, (_, i) => i));
    }
    await waitFor('2,000 messages consumed', () => new Set(consumed.map(recordId)).size >= produced.length, 15_000);
    expectConsumedExactlyProduced();
  });

  it('rejects bad commands without dying', async () => {
    await expect(broker.setLeader(topic, PARTITIONS, 1)).rejects.toThrow(/partition must be/);
    await expect(broker.brokerDown(4)).rejects.toThrow(/brokerId must be/);
    await expect(broker.createTopic(topic, 2)).rejects.toThrow(/already exists/);
    await expect(broker.createTopic('bad name', 2)).rejects.toThrow();
    await broker.setRtt(1, 0); // still answering
  });

  it('makes injected faults visible to a client that does not retry', async () => {
    const strict = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } });
    await strict.connect();
    try {
      // What the failed send wrote (nothing) is checked by the final consumed-equals-produced.
      const send = async (): Promise<void> => {
        const [ack] = await strict.send({ topic, acks: -1, messages: [{ key: 'probe', value: 'probe', partition: 2 }] });
        produced.push({ partition: 2, offset: ack!.baseOffset!, key: 'probe', value: 'probe' });
      };
      await send();
      await broker.pushRequestErrors(KafkaApiKey.Produce, KafkaErrorCode.NotLeaderForPartition, 1);
      await expect(send()).rejects.toThrow(/not the leader/i);
      await send();
    } finally {
      await strict.disconnect();
    }

    const [host, port] = broker.brokers[0]!.split(':');
    await broker.brokerDown(1);
    await expect(tcpConnect(host!, Number(port))).rejects.toThrow(/ECONNREFUSED/);
    await broker.brokerUp(1);
    await tcpConnect(host!, Number(port));
  });

  it('recovers from produce errors, a moved leader and a leader broker going down, consuming every offset once', async () => {
    await broker.pushRequestErrors(KafkaApiKey.Produce, KafkaErrorCode.NotLeaderForPartition, 3);
    await produce(200);

    const leader0 = await leaderOf(0);
    const newLeader0 = (leader0 % broker.brokerCount) + 1;
    await broker.setLeader(topic, 0, newLeader0);
    await produce(200);
    expect(await leaderOf(0)).toBe(newLeader0);

    // Broker-down does not move leadership in the mock: move every partition the broker leads.
    const downBroker = await leaderOf(1);
    const standIn = (downBroker % broker.brokerCount) + 1;
    await broker.brokerDown(downBroker);
    for (let p = 0; p < PARTITIONS; p++) {
      if ((await leaderOf(p)) === downBroker) await broker.setLeader(topic, p, standIn);
    }
    await produce(200);
    await broker.brokerUp(downBroker);

    await broker.pushRequestErrors(KafkaApiKey.Fetch, KafkaErrorCode.Disconnect, 2);
    await produce(200);

    await waitFor('every message consumed', () => new Set(consumed.map(recordId)).size >= produced.length, 20_000);
    expect(produced).toHaveLength(2_802);
    expectConsumedExactlyProduced();
  });
});
