import { describe, expect, it } from 'vitest';
import { DomainError } from '../../shared/domain/errors.ts';
import { MAX_JSON_DEPTH, parseJsonBody } from '../../shared/http/json-body.ts';
import { statusOf as httpStatus } from '../../shared/http/problem.ts';

const statusOf = (f: () => unknown) => {
  try {
    f();
    return 0;
  } catch (e) {
    return e instanceof DomainError ? httpStatus(e) : -1;
  }
};

describe('JSON bodies', () => {
  it('parses plain and base64 bodies', () => {
    expect(parseJsonBody('{"a":1}', false, 100)).toEqual({ a: 1 });
    expect(parseJsonBody(Buffer.from('[1,2]').toString('base64'), true, 100)).toEqual([1, 2]);
    expect(parseJsonBody(undefined, false, 100)).toBeUndefined();
  });

  it('refuses bodies over the limit with 413, counting bytes not characters', () => {
    expect(statusOf(() => parseJsonBody(JSON.stringify({ s: 'x'.repeat(200) }), false, 100))).toBe(413);
    expect(statusOf(() => parseJsonBody(JSON.stringify({ s: 'é'.repeat(50) }), false, 100))).toBe(413);
  });

  it('refuses malformed and over-deep JSON with 400', () => {
    expect(statusOf(() => parseJsonBody('{"a":', false, 100))).toBe(400);
    const deep = `${'['.repeat(MAX_JSON_DEPTH + 1)}${']'.repeat(MAX_JSON_DEPTH + 1)}`;
    expect(statusOf(() => parseJsonBody(deep, false, 10_000))).toBe(400);
    const ok = `${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}`;
    expect(statusOf(() => parseJsonBody(ok, false, 10_000))).toBe(0);
  });

  it('keeps __proto__ as plain data, never touching prototypes', () => {
    const v = parseJsonBody('{"__proto__": {"polluted": true}}', false, 100) as Record<string, unknown>;
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
  });
});
