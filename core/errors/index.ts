export { LambdaError } from './lambda-error.ts';
export { ConfigError, type ConfigIssue } from './config-error.ts';
export { SourceError } from './source-error.ts';
export { CoordinationError } from './coordination-error.ts';
export { ConflictError } from './conflict-error.ts';
export { QueryError, type QueryErrorKind } from './query-error.ts';
