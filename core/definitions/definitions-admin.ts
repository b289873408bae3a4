import type { LoadedConfig } from '../config/load-config.ts';
import { validateConfig } from '../config/load-config.ts';
import type { DefinitionsStore } from '../coordination/definitions-store.ts';
import { conflictMessage } from '../coordination/definitions-store.ts';
import { ConfigError, ConflictError, CoordinationError, LambdaError } from '../errors/index.ts';
import { redactedSecrets } from './redact-definitions.ts';
import { diffDefinitions, isEmptyDiff, type ComparableDefinitions, type DefinitionsDiff } from './definitions-diff.ts';
import type { Definitions, PublishedDefinitions } from './definitions.ts';
import { loadWithDefinitions } from './validate-definitions.ts';

/** A view or alert that `DELETE` names but the current definitions do not hold. */
export class UnknownDefinitionError extends LambdaError {}

export interface ApplyOptions {
  /** The version the change was made against; default: the current one (no check beyond the publish's own). */
  readonly expectedVersion?: number;
  /** Validate and diff only. */
  readonly dryRun?: boolean;
}

export interface ApplyOutcome {
  /** The version current after the call: new when applied, else unchanged. */
  readonly version: number;
  readonly previousVersion: number;
  /** False for a dry run and for a set equal to the current one (nothing to publish). */
  readonly applied: boolean;
  readonly diff: DefinitionsDiff;
}

export type DefinitionKind = 'views' | 'alerts';

/**
 * How definitions are changed, for every interface (HTTP, and through it `lambda apply`): each
 * change is the whole new set, validated with this node's config exactly as `lambda check`
 * validates (ConfigError with key paths otherwise), diffed against the current set, and published
 * against the version it was made from (ConflictError when another change won meanwhile).
 */
export class DefinitionsAdmin {
  constructor(
    private readonly store: DefinitionsStore,
    /** This node's config: the source schema and settings the definitions are validated with. */
    private readonly base: LoadedConfig,
  ) {}

  current(): Promise<PublishedDefinitions | undefined> {
    return this.store.current();
  }

  async apply(definitions: Definitions, options: ApplyOptions = {}): Promise<ApplyOutcome> {
    const current = await this.readCurrent();
    const currentVersion = current?.version ?? 0;
    const expectedVersion = options.expectedVersion ?? currentVersion;
    if (expectedVersion !== currentVersion) throw new ConflictError(conflictMessage(expectedVersion, currentVersion), { context: { expectedVersion, currentVersion } });
    const secrets = redactedSecrets(definitions);
    if (secrets.length > 0) throw new ConfigError(secrets);
    const next = await loadWithDefinitions(this.base, definitions);
    const diff = diffDefinitions(current ? this.normalized(current.definitions) : undefined, next.config);
    if (options.dryRun || (current && isEmptyDiff(diff))) return { version: currentVersion, previousVersion: currentVersion, applied: false, diff };
    const published = await this.store.publish(definitions, expectedVersion);
    return { version: published.version, previousVersion: currentVersion, applied: true, diff };
  }

  /** Adds or replaces one view or alert, leaving the others as they are. */
  async put(kind: DefinitionKind, name: string, definition: unknown, options: ApplyOptions = {}): Promise<ApplyOutcome> {
    const current = await this.readCurrent();
    const definitions = current?.definitions ?? { views: {}, alerts: {} };
    return this.apply({ ...definitions, [kind]: { ...definitions[kind], [name]: definition } }, { expectedVersion: current?.version ?? 0, ...options });
  }

  /** Removes one view or alert; an alert still watching a removed view is refused (400, its key path). */
  async remove(kind: DefinitionKind, name: string, options: ApplyOptions = {}): Promise<ApplyOutcome> {
    const current = await this.readCurrent();
    const entries = current?.definitions[kind] ?? {};
    if (!Object.hasOwn(entries, name)) throw new UnknownDefinitionError(`no ${kind === 'views' ? 'view' : 'alert'} named "${name}" in the current definitions (version ${current?.version ?? 0})`);
    const rest = Object.fromEntries(Object.entries(entries).filter(([key]) => key !== name));
    return this.apply({ ...current!.definitions, [kind]: rest }, { expectedVersion: current!.version, ...options });
  }

  /**
   * The current set. ZooKeeper unreachable or between sessions: a retriable error saying that
   * nothing was changed, which is certain since nothing was sent yet.
   */
  private async readCurrent(): Promise<PublishedDefinitions | undefined> {
    try {
      return await this.store.current();
    } catch (error) {
      if (!(error instanceof CoordinationError)) throw error;
      throw new CoordinationError(`cannot read the current definitions, so nothing was changed: ${error.message}`, { retriable: true, cause: error });
    }
  }

  /** The published set as the schema normalizes it, so the diff ignores spelling (`60s` = `1m`). */
  private normalized(definitions: Definitions): ComparableDefinitions {
    try {
      return validateConfig({ ...this.base.raw, views: definitions.views, alerts: definitions.alerts }).config;
    } catch {
      // The current set no longer fits this node's config: compare it as written.
      return definitions;
    }
  }
}
