import { z } from 'zod';
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
});
export type Member = z.infer<typeof memberSchema>;

/** The live processes of the cluster: one entry each, gone when the process (or session) is. */
export interface MemberRegistry {
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
 * `<root>/members/<id>`: an ephemeral node per process holding its Member JSON. Re-created on a
 * new session after an expiry (the old one vanished with its session). Unreadable or foreign
 * children are skipped, never fatal: status must keep working.
 */
export class ZkMemberRegistry implements MemberRegistry {
  private readonly dir: string;
  private self: Member | undefined;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly session: ZkSession,
    root: string,
    private readonly logger: Logger,
  ) {
    this.dir = `${root}/members`;
    this.unsubscribe = session.onEvent((event) => {
      if (event === 'new-session' && this.self) void this.write(this.self);
    });
  }

  async register(member: Member): Promise<void> {
    this.self = member;
    await this.write(member);
  }

  private async write(member: Member): Promise<void> {
    const client = this.session.client;
    const path = `${this.dir}/${member.id}`;
    try {
      await client.mkdirp(this.dir);
      const existing = await client.exists(path);
      if (existing?.ephemeralOwner === client.sessionId) return;
      // Left by an earlier session of this member (a restart within the session timeout): replace it.
      if (existing) await client.delete(path, -1).catch(() => undefined);
      await client.create(path, Buffer.from(JSON.stringify(member)), 'ephemeral');
    } catch (error) {
      if (isZkError(error, 'NODEEXISTS')) return;
      this.logger.warn({ err: error, path }, 'cannot register this process under members/');
      throw error;
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
    await this.session.client.delete(`${this.dir}/${this.self.id}`, -1).catch(() => undefined);
    this.self = undefined;
  }
}
