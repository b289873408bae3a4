import { LambdaError, QueryError, type QueryErrorKind } from '../../core/errors/index.ts';
import type { ApplyOutcome } from '../../core/definitions/definitions-admin.ts';
import type { StatusInfo, ViewInfo, ViewsAnswer } from './api-types.ts';

/** The body of `GET /v1/definitions`. */
export interface DefinitionsDocument {
  /** 0 when nothing is published yet. */
  readonly version: number;
  readonly publishedAtMs: number | null;
  readonly views: Record<string, unknown>;
  readonly alerts: Record<string, unknown>;
}
import type { QueryResult } from '../query/query-result.ts';
import { MEDIA_TYPES, type ResultFormat } from '../query/result-formats.ts';

export interface ServingClientOptions {
  /** The node's HTTP address, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  readonly token?: string;
}

const KIND_BY_STATUS: Readonly<Record<number, QueryErrorKind>> = { 400: 'bad_request', 401: 'refused', 403: 'refused', 404: 'bad_request', 408: 'timeout', 409: 'refused', 413: 'bad_request' };

/** A client of the serving HTTP API (`lambda query`, `lambda status`); errors carry the node's message. */
export class ServingClient {
  private readonly baseUrl: string;

  constructor(private readonly options: ServingClientOptions) {
    this.baseUrl = options.url.replace(/\/+$/, '');
  }

  async query(sql: string): Promise<QueryResult> {
    return JSON.parse((await this.queryText(sql, 'json')).text) as QueryResult;
  }

  /**
   * The answer's body as the node wrote it, in the given format, and whether the rows were cut
   * at serving.maxRows (the `X-Lambda-Truncated` header, sent with every format).
   */
  async queryText(sql: string, format: ResultFormat): Promise<{ text: string; truncated: boolean; rowCount: number }> {
    const { text, headers } = await this.send('/v1/query', { method: 'POST', body: JSON.stringify({ sql }), headers: { 'content-type': 'application/json', accept: MEDIA_TYPES[format] } });
    return { text, truncated: headers.get('x-lambda-truncated') === 'true', rowCount: Number(headers.get('x-lambda-row-count') ?? NaN) };
  }

  async status(): Promise<StatusInfo> {
    return JSON.parse(await this.request('/v1/status')) as StatusInfo;
  }

  async views(): Promise<ViewInfo[]> {
    return (JSON.parse(await this.request('/v1/views')) as { views: ViewInfo[] }).views;
  }

  /**
   * `GET /v1/views?waitFor=version&timeout=…`: answers once the node serves definitions `version`
   * (or later) with every view exact (`settled`), or after `timeoutMs` with the views as they are.
   */
  async waitForViews(version: number, timeoutMs: number): Promise<Required<ViewsAnswer>> {
    const answer = JSON.parse(await this.request(`/v1/views?waitFor=${version}&timeout=${Math.max(0, Math.round(timeoutMs))}ms`)) as ViewsAnswer;
    return { views: answer.views, settled: answer.settled === true };
  }

  /** `GET /v1/definitions`: the current set as published, with its version. */
  async definitions(): Promise<DefinitionsDocument> {
    return JSON.parse(await this.request('/v1/definitions')) as DefinitionsDocument;
  }

  /** `PUT /v1/definitions`: the whole set; a 409 when `expectedVersion` is no longer current. */
  async applyDefinitions(body: { views: unknown; alerts: unknown; expectedVersion?: number; dryRun?: boolean }): Promise<ApplyOutcome> {
    return JSON.parse(await this.request('/v1/definitions', { method: 'PUT', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })) as ApplyOutcome;
  }

  private async request(path: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<string> {
    return (await this.send(path, init)).text;
  }

  private async send(path: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<{ text: string; headers: Headers }> {
    const url = `${this.baseUrl}${path}`;
    const headers = { ...init.headers, ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}) };
    let response: Response;
    try {
      response = await fetch(url, { ...init, headers });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new LambdaError(`cannot reach the node at ${this.baseUrl} (${cause?.code ?? cause?.message ?? String(error)}); is it running? Set --url or LAMBDA_URL`, {
        retriable: true,
        cause: error,
      });
    }
    const text = await response.text();
    if (response.ok) return { text, headers: response.headers };
    let message = text.trim();
    try {
      message = (JSON.parse(text) as { error?: string }).error ?? message;
    } catch {
      // not JSON: keep the text
    }
    const hint = response.status === 401 ? ' (set --token or LAMBDA_TOKEN)' : '';
    throw new QueryError(KIND_BY_STATUS[response.status] ?? 'internal', `${response.status} from ${url}: ${message}${hint}`, {
      context: { status: response.status },
    });
  }
}
