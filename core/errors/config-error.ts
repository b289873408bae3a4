import { LambdaError } from './lambda-error.ts';

/** One problem in the configuration, located by its key path (`views.page_traffic.measures.p95`). */
export interface ConfigIssue {
  readonly path: string;
  readonly message: string;
}

/** The configuration is invalid; `issues` lists every problem found, each with its key path. */
export class ConfigError extends LambdaError {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[], options: { file?: string } = {}) {
    const where = options.file ? ` in ${options.file}` : '';
    const lines = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message));
    super(`invalid configuration${where}:\n  ${lines.join('\n  ')}`, {
      context: { file: options.file },
    });
    this.issues = issues;
  }
}
