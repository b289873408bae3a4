import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { freePort } from '../harness/free-port.ts';
import type { NotificationPayload } from '../../serving-layer/alerts/alert-record.ts';

export type Responder = (payload: NotificationPayload, res: ServerResponse) => void;

/**
 * A real HTTP webhook receiver for the alert tests, on a fixed loopback port so that it can go
 * down and come back at the same URL. Records every payload that arrived (`received`) and those
 * it answered with 2xx (`accepted`: what a sink may consider delivered).
 */
export class WebhookReceiver {
  readonly received: NotificationPayload[] = [];
  readonly accepted: NotificationPayload[] = [];
  readonly headers: IncomingMessage['headers'][] = [];
  respond: Responder = (_p, res) => res.writeHead(200).end('ok');
  private server: Server | undefined;

  constructor(readonly port: number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  /** Answers every request with `status` from now on. */
  answerWith(status: number): void {
    this.respond = (_p, res) => res.writeHead(status).end();
  }

  async up(): Promise<void> {
    const server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        const payload = JSON.parse(body) as NotificationPayload;
        this.received.push(payload);
        this.headers.push(req.headers);
        res.once('finish', () => {
          if (res.statusCode >= 200 && res.statusCode < 300) this.accepted.push(payload);
        });
        this.respond(payload, res);
      });
    });
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(this.port, '127.0.0.1', resolve));
    this.server = server;
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/**
 * For a describe block: a temporary directory and a receiver on a free port, up from its beforeAll
 * to its afterAll. Read `dir` and `receiver` inside the tests (they are set in beforeAll).
 */
export function receiverPerSuite(tempPrefix: string): { readonly dir: string; readonly receiver: WebhookReceiver } {
  const suite = { dir: '', receiver: undefined as unknown as WebhookReceiver };
  beforeAll(async () => {
    suite.dir = mkdtempSync(join(tmpdir(), tempPrefix));
    suite.receiver = new WebhookReceiver(await freePort());
    await suite.receiver.up();
  });
  afterAll(async () => {
    await suite.receiver?.down();
    if (suite.dir) rmSync(suite.dir, { recursive: true, force: true });
  });
  return suite;
}
