import { z } from 'zod';
import { ConfigError } from '../errors/index.ts';
import type { Logger } from '../observability/logger.ts';
import { isZkError } from './zk-client.ts';
import type { ZkSession } from './zk-session.ts';

/** What a process says about itself under `members/` (DESIGN.md, "Coordination"). */
export const memberSchema = z.object({
  id: z.string(),
  roles: z.array(z.string()),
  /** Its HTTP address when it serves. */
  url: z.string().nullable(),
  host: z.string(),
  pid: z.number().int(),
  startedAtMs: z.number(),
  /** The definitions version this process runs (absent from members older than issue 16). */
  definitionsVersion: z.number().int().optional(),
});
export type Member = z.infer<typeof memberSchema>;

/** The live processes of the cluster: one entry each, gone when the process (or session) is. */
export interface MemberRegistry {
  /**
   * Claims the member's id for this process: rejects (ConfigError, naming the id) when another
   * live process holds it. The entry can be rewritten by registering again (its url once known).
   */
  register(member: Member): Promise<void>;
  members(): Promise<Member[]>;
  close(): Promise<void>;
}

/** Single-node mode: this process is the whole cluster. */
export class LocalMemberRegistry implements MemberRegistry {
  private self: Member | undefined;

  async register(member: Member): Promise<void> {
    this.self = member;
  }

  async members(): Promise<Member[]> {
    return this.self ? [this.self] : [];
  }

  async close(): Promise<void> {
    this.self = undefined;
  }
}

/**
 * `<root>/members/<id>`: an ephemeral node per process holding its Member JSON; the id is the
 * node's stable id (node.id), so two live processes cannot claim the same one. A node killed and
 * restarted at once finds its previous session's entry: it waits for that session to expire (at
 * most the session timeout) before it calls the id taken. Re-created on a new session after an
 * expiry. Unreadable or foreign children are skipped, never fatal: status must keep working.
 */
export class ZkMemberRegistry implements MemberRegistry {
  private readonly dir: string;
  private self: Member | undefined;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly session: ZkSession,
    root: string,
    private readonly logger: Logger,
    /** How long a claimed id may take to be freed by its previous (dead) holder's session expiry. */
    private readonly claimWaitMs: number,
  ) {
    this.dir = `${root}/members`;
    this.unsubscribe = session.onEvent((event) => {
      if (event !== 'new-session' || !this.self) return;
      this.write(this.self).catch((error: unknown) => this.logger.error({ err: error, id: this.self?.id }, 'cannot register this node again after its session expired; `lambda status` will not list it'));
    });
  }

  async register(member: Member): Promise<void> {
    this.self = member;
    await this.write(member);
  }

  private async write(member: Member): Promise<void> {
    const client = this.session.client;
    const path = `${this.dir}/${member.id}`;
    const data = Buffer.from(JSON.stringify(member));
    await client.mkdirp(this.dir);
    const deadline = Date.now() + this.claimWaitMs;
    for (;;) {
      const existing = await client.get(path);
      if (existing?.stat.ephemeralOwner === client.sessionId) {
        await client.set(path, data, -1);
        return;
      }
      if (!existing) {
        try {
          await client.create(path, data, 'ephemeral');
          return;
        } catch (error) {
          if (!isZkError(error, 'NODEEXISTS')) throw error;
          continue;
        }
      }
      if (Date.now() >= deadline) {
        const holder = memberSchema.safeParse(safeJson(existing.data));
        const who = holder.success ? ` (host ${holder.data.host}, pid ${holder.data.pid})` : '';
        throw new ConfigError([{ path: 'node.id', message: `"${member.id}" is already the id of a live node${who}; give each node its own node.id (or --node-id / LAMBDA_NODE_ID)` }]);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async members(): Promise<Member[]> {
    const client = this.session.client;
    let names: string[];
    try {
      names = await client.getChildren(this.dir);
    } catch (error) {
      if (isZkError(error, 'NONODE')) return [];
      throw error;
    }
    const members: Member[] = [];
    for (const name of names.sort()) {
      const node = await client.get(`${this.dir}/${name}`).catch(() => null);
      if (!node) continue;
      try {
        members.push(memberSchema.parse(JSON.parse(node.data.toString('utf8'))));
      } catch {
        this.logger.warn({ node: name }, 'skipping an unreadable member node');
      }
    }
    return members;
  }

  async close(): Promise<void> {
    this.unsubscribe();
    if (!this.self) return;
    const path = `${this.dir}/${this.self.id}`;
    this.self = undefined;
    // Ending the session deletes it too; this only makes the leave visible sooner.
    const client = this.session.client;
    try {
      const stat = await client.exists(path);
      if (stat?.ephemeralOwner === client.sessionId) await client.delete(path, stat.version);
    } catch (error) {
      this.logger.debug({ err: error, path }, 'member entry not removed; the session end will');
    }
  }
}

function safeJson(data: Buffer): unknown {
  try {
    return JSON.parse(data.toString('utf8'));
  } catch {
    return undefined;
  }
}
