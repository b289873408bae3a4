import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from './http-error.ts';

export const TOKEN_COOKIE = 'lambda_token';
const BEARER = /^Bearer\s+(.+)$/i;

/**
 * serving.token on every route (404s included, so routes cannot be probed without it). Clients
 * send `Authorization: Bearer <token>`. A browser opening the console cannot, so the token is
 * also accepted as the `access_token` query parameter (RFC 6750 §2.3), which then sets an
 * HttpOnly, SameSite=Strict cookie for the console's own requests and assets.
 * Tokens are compared as SHA-256 digests with timingSafeEqual: constant time, any length.
 */
export function bearerAuth(token: string, adminToken?: string): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const expected = digest(token);
  // The admin token reads too: `lambda apply` sends one token.
  const admin = adminToken === undefined ? undefined : digest(adminToken);
  return async (request, reply) => {
    const fromQuery = (request.query as Record<string, unknown> | undefined)?.access_token;
    const presented =
      BEARER.exec(request.headers.authorization ?? '')?.[1]?.trim() ??
      (typeof fromQuery === 'string' ? fromQuery : undefined) ??
      request.cookies?.[TOKEN_COOKIE];
    if (presented === undefined) {
      throw new HttpError(401, 'this node requires a bearer token (serving.token): send Authorization: Bearer <token>', {
        'www-authenticate': 'Bearer realm="lambda"',
      });
    }
    const presentedDigest = digest(presented);
    if (!timingSafeEqual(presentedDigest, expected) && !(admin && timingSafeEqual(presentedDigest, admin))) {
      throw new HttpError(401, 'the bearer token is wrong', { 'www-authenticate': 'Bearer realm="lambda", error="invalid_token"' });
    }
    if (presented === fromQuery) {
      reply.setCookie(TOKEN_COOKIE, presented, { httpOnly: true, sameSite: 'strict', path: '/' });
    }
  };
}

/**
 * What changes definitions (DESIGN.md, "Definitions are cluster state"): with serving.adminToken
 * set, that token in the Authorization header (not the console's cookie, which a page could
 * make the browser send); with only serving.token set, nothing, since a query token must not
 * change what every node runs; with no token at all, anyone who can reach the node, as for SQL.
 */
export function adminAuth(options: { token?: string; adminToken?: string }): (request: FastifyRequest) => Promise<void> {
  const admin = options.adminToken === undefined ? undefined : digest(options.adminToken);
  return async (request) => {
    if (admin === undefined) {
      if (options.token === undefined) return;
      throw new HttpError(403, 'changing definitions needs serving.adminToken, which this node does not set; serving.token only reads');
    }
    const presented = BEARER.exec(request.headers.authorization ?? '')?.[1]?.trim();
    if (presented === undefined) {
      throw new HttpError(401, 'changing definitions needs the admin token (serving.adminToken): send Authorization: Bearer <admin token>', {
        'www-authenticate': 'Bearer realm="lambda"',
      });
    }
    if (!timingSafeEqual(digest(presented), admin)) {
      throw new HttpError(403, 'this token cannot change definitions; that needs the admin token (serving.adminToken)');
    }
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
