export { freePort } from './free-port.ts';
export { KafkaApiKey, KafkaErrorCode, KafkaTestBroker, randomTopicName, type KafkaTestBrokerOptions } from './kafka-broker.ts';
export { ZooKeeperTestServer, type ZooKeeperTestServerOptions } from './zookeeper-server.ts';
export { inMemoryDuckDb, type InMemoryDuckDb } from './in-memory-duckdb.ts';
export { waitFor } from './wait-for.ts';
export { describeExit, killAll, LambdaProcess, type Incarnation, type LambdaProcessOptions, type LogLine, type ProcessExit } from './lambda-process.ts';
export { TcpProxy } from './tcp-proxy.ts';
