import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * How a cut link behaves:
 * - `blackhole`: a network partition. Open connections stay open and go silent: bytes either way
 *   are dropped, nothing is closed, so neither end learns anything until its own timeouts fire
 *   (ZooKeeper expires a session only when the server stops hearing from it; a client notices
 *   only when its pings go unanswered). New connections are accepted and swallowed the same way.
 * - `reset`: every connection is reset (RST) and new ones are reset as soon as they arrive.
 */
export type CutMode = 'blackhole' | 'reset';

interface Link {
  readonly client: Socket;
  upstream: Socket | undefined;
  /** Bytes are no longer forwarded; the link is torn down on restore. */
  frozen: boolean;
}

/**
 * A TCP proxy on loopback in front of one server, whose link can be cut and restored while both
 * ends keep running: point one process at `address` instead of the server to partition it alone.
 * Forwarding is byte for byte with no buffering beyond the sockets'.
 */
export class TcpProxy {
  readonly port: number;
  /** `127.0.0.1:<port>`, for a connect string. */
  readonly address: string;

  private readonly links = new Set<Link>();
  private mode: CutMode | undefined;
  private refused = 0;

  private constructor(
    private readonly server: Server,
    port: number,
    readonly target: { readonly host: string; readonly port: number },
  ) {
    this.port = port;
    this.address = `127.0.0.1:${port}`;
  }

  static async start(target: { host?: string; port: number }): Promise<TcpProxy> {
    const resolved = { host: target.host ?? '127.0.0.1', port: target.port };
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (typeof address !== 'object' || !address) throw new Error('the proxy has no port');
    const proxy = new TcpProxy(server, address.port, resolved);
    server.on('connection', (socket) => proxy.accept(socket));
    return proxy;
  }

  /** Whether the link is cut, and how. */
  get cutMode(): CutMode | undefined {
    return this.mode;
  }

  /** Connections currently open from clients (forwarding or frozen). */
  get connectionCount(): number {
    return this.links.size;
  }

  /** Connections reset at once because the link was cut ('reset'), since the start: a test waits on it. */
  get refusedCount(): number {
    return this.refused;
  }

  /** Cuts the link: see `CutMode`. Cutting a cut link again changes only how new connections fare. */
  cut(mode: CutMode = 'blackhole'): void {
    this.mode = mode;
    for (const link of this.links) {
      if (mode === 'reset') this.destroy(link, true);
      else link.frozen = true;
    }
  }

  /**
   * Restores the link. Frozen connections lost bytes, so they are closed (as a TCP connection whose
   * retransmissions ran out would be); clients reconnect and are forwarded again.
   */
  restore(): void {
    this.mode = undefined;
    for (const link of this.links) if (link.frozen) this.destroy(link, false);
  }

  async stop(): Promise<void> {
    for (const link of this.links) this.destroy(link, false);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    client.on('error', () => undefined);
    if (this.mode === 'reset') {
      this.refused++;
      client.resetAndDestroy();
      return;
    }
    const link: Link = { client, upstream: undefined, frozen: this.mode === 'blackhole' };
    this.links.add(link);
    client.on('close', () => this.destroy(link, false));
    client.on('data', (chunk) => {
      if (!link.frozen) link.upstream?.write(chunk);
    });
    if (link.frozen) return; // swallowed: no upstream connection at all
    // Bytes a client sends before the upstream connects wait in the client socket: pause it.
    client.pause();
    const upstream = connect({ host: this.target.host, port: this.target.port }, () => {
      if (!link.frozen) client.resume();
    });
    link.upstream = upstream;
    upstream.on('error', () => undefined);
    upstream.on('data', (chunk) => {
      if (!link.frozen) client.write(chunk);
    });
    // The server closing a frozen link goes unnoticed by the client, as in a partition.
    upstream.on('close', () => {
      if (!link.frozen) this.destroy(link, false);
    });
  }

  private destroy(link: Link, reset: boolean): void {
    if (!this.links.delete(link)) return;
    if (reset) {
      link.client.resetAndDestroy();
      link.upstream?.resetAndDestroy();
    } else {
      link.client.destroy();
      link.upstream?.destroy();
    }
  }
}
