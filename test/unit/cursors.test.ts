/** The page-cursor parser (#18 item 8): what the API issues comes back; nothing else gets through. */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { timestampText } from '../../shared/adapters/memory/memory-metadata-values.ts';
import { InvalidInputError } from '../../shared/domain/errors.ts';
import type { ChildSort } from '../../shared/domain/model.ts';
import {
  decodeAuditCursor,
  decodeChildCursor,
  encodeAuditCursor,
  encodeChildCursor,
  isNameText,
  isSizeText,
  isTimestampText,
} from '../../shared/services/cursors.ts';

const ID = randomUUID();
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const NAME: ChildSort = { by: 'name', dir: 'asc' };

/** Runs `f`; returns the validation error it threw (failing the test on anything else). */
function refusal(f: () => unknown): InvalidInputError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInputError);
    const e = err as InvalidInputError;
    expect(e.slug).toBe('validation-error');
    expect(e.extra.errors).toEqual([expect.objectContaining({ path: 'query.cursor' })]);
    return e;
  }
  throw new Error('accepted');
}

/** Runs `f`; undefined when it threw a validation error (anything else fails the test). */
function attempt<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInputError);
    return undefined;
  }
}

// What `col::text` / `at::text` answer on PGlite and PostgreSQL (ISO DateStyle, any TimeZone),
// and what the memory adapter writes.
const TIMES = [
  '2026-12-02 00:20:52.585+00',
  '2026-12-02 00:20:52+00',
  '2026-12-02 00:20:52.123456+00',
  '2026-12-01 19:20:52.5-05',
  '2026-12-02 05:50:52.5+05:30',
  '1883-11-18 12:00:00+00:53:28',
  '0001-01-01 00:00:00+00',
  '2024-02-29 23:59:59.999999+00',
  '9999-12-31 23:59:59+14',
  timestampText(Date.UTC(2026, 0, 2, 3, 4, 5) * 1000 + 123_456),
  timestampText(0),
];

describe('cursors the API issues', () => {
  it.each<[ChildSort['by'], string]>([
    ['name', 'report.pdf'],
    ['name', 'ünïcødé 𝄞 "quoted" \\ back'],
    ['size', '0'],
    ['size', '5497558138880'],
    ['size', String(Number.MAX_SAFE_INTEGER)],
    ...TIMES.map((t): [ChildSort['by'], string] => ['modified', t]),
  ])('round-trip a %s cursor at %j, both directions', (by, value) => {
    for (const dir of ['asc', 'desc'] as const) {
      const sort = { by, dir };
      const raw = encodeChildCursor({ value, id: ID }, sort);
      expect(raw).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(decodeChildCursor(raw, sort)).toEqual({ value, id: ID });
    }
  });

  it.each(TIMES)('round-trip an audit cursor at %j', (at) => {
    expect(decodeAuditCursor(encodeAuditCursor({ at, id: ID }))).toEqual({ at, id: ID });
  });

  it('refuses a cursor of another sort or direction, saying so', () => {
    const raw = encodeChildCursor({ value: 'a', id: ID }, NAME);
    for (const sort of [
      { by: 'size', dir: 'asc' },
      { by: 'name', dir: 'desc' },
    ] as const) {
      expect(refusal(() => decodeChildCursor(raw, sort)).message).toBe(
        'the cursor belongs to another sort order',
      );
    }
  });

  it('does not take an audit cursor for a listing, or the reverse', () => {
    refusal(() => decodeChildCursor(encodeAuditCursor({ at: TIMES[0] as string, id: ID }), NAME));
    refusal(() => decodeAuditCursor(encodeChildCursor({ value: 'a', id: ID }, NAME)));
  });
});

describe('field checks', () => {
  it.each([
    ['0', true],
    ['42', true],
    [String(Number.MAX_SAFE_INTEGER), true],
    [String(Number.MAX_SAFE_INTEGER + 2), false],
    ['99999999999999999999999', false],
    ['-1', false],
    ['+1', false],
    ['07', false],
    [' 7', false],
    ['7 ', false],
    ['1e3', false],
    ['1.5', false],
    ['0x10', false],
    ['', false],
    ['abc', false],
    [7, false],
    [null, false],
  ])('size %j: %s', (v, ok) => {
    expect(isSizeText(v)).toBe(ok);
  });

  it.each([
    '2026-02-30 00:00:00+00',
    '2025-02-29 00:00:00+00',
    '2026-04-31 00:00:00+00',
    '2026-13-01 00:00:00+00',
    '2026-00-01 00:00:00+00',
    '2026-01-00 00:00:00+00',
    '0000-01-01 00:00:00+00',
    '2026-01-01 24:00:00+00',
    '2026-01-01 25:00:00+00',
    '2026-01-01 00:60:00+00',
    '2026-01-01 00:00:60+00',
    '2026-01-01 00:00:00+16',
    '2026-01-01 00:00:00+01:60',
    '2026-01-01 00:00:00.1234567+00',
    '2026-01-01 00:00:00.+00',
    '2026-01-01 00:00:00',
    '2026-01-01T00:00:00Z',
    '2026-01-01T00:00:00+00',
    '2026-01-01 00:00:00 +00',
    '2026-01-01+00',
    '294277-01-01 00:00:00+00',
    '2026-01-01 00:00:00+00 BC',
    ' 2026-01-01 00:00:00+00',
    'infinity',
    '-infinity',
    'now',
    'epoch',
    'yesterday',
    '',
    1767225600000,
    null,
  ])('time %j is refused', (v) => {
    expect(isTimestampText(v)).toBe(false);
  });

  it.each([
    ['a', true],
    ['report (1).pdf', true],
    ['𝄞', true],
    ['x'.repeat(1024), true],
    ['x'.repeat(1025), false],
    ['', false],
    ['a\u0000b', false],
    ['a\nb', false],
    ['a\u007fb', false],
    ['a\u0085b', false],
    ['\ud800', false],
    ['a\udc00b', false],
    ['\ud834', false],
    [{}, false],
    [1, false],
  ])('name %j: %s', (v, ok) => {
    expect(isNameText(v)).toBe(ok);
  });
});

describe('crafted cursors', () => {
  const child = (over: Record<string, unknown> = {}) => ({
    value: 'a',
    id: ID,
    by: 'name',
    dir: 'asc',
    ...over,
  });
  const valid = b64(child());

  it.each([
    ['a valid one, for reference', valid, true],
    ['id of 36 dashes', b64(child({ id: '-'.repeat(36) })), false],
    ['id of 36 zeros', b64(child({ id: '0'.repeat(36) })), false],
    ['id with misplaced dashes', b64(child({ id: '0000-00000000-0000-0000-000000000000' })), false],
    ['id in upper case', b64(child({ id: ID.toUpperCase() })), false],
    ['id in braces', b64(child({ id: `{${ID}}` })), false],
    ['id with a trailing newline', b64(child({ id: `${ID}\n` })), false],
    ['by unknown', b64(child({ by: 'owner' })), false],
    ['dir unknown', b64(child({ dir: 'sideways' })), false],
    ['fields in another order', b64({ id: ID, value: 'a', by: 'name', dir: 'asc' }), false],
    ['a field missing', b64({ value: 'a', id: ID, by: 'name' }), false],
    ['an extra field', b64(child({ x: 1 })), false],
    [
      'a __proto__ field',
      Buffer.from(`{"__proto__":{},"value":"a","id":"${ID}","by":"name","dir":"asc"}`).toString('base64url'),
      false,
    ],
    ['whitespace in the JSON', Buffer.from(JSON.stringify(child(), null, 1)).toString('base64url'), false],
    [
      'a \\u escape the encoder would not write',
      Buffer.from(JSON.stringify(child()).replace('"a"', '"\\u0061"')).toString('base64url'),
      false,
    ],
    ['padding', `${valid}=`, false],
    ['standard base64', Buffer.from(JSON.stringify(child({ value: '>>>???' }))).toString('base64'), false],
    [
      'non-canonical trailing bits',
      `${valid.slice(0, -1)}${String.fromCharCode(valid.charCodeAt(valid.length - 1) ^ 1)}`,
      false,
    ],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]).toString('base64url'), false],
    ['JSON null', b64(null), false],
    ['JSON array', b64(['a', ID, 'name', 'asc']), false],
    ['JSON string', b64('a'), false],
    ['empty', '', false],
    ['too long', b64(child({ value: 'a'.repeat(1000) })), false],
  ])('%s', (_what, raw, ok) => {
    if (ok) expect(decodeChildCursor(raw, NAME)).toEqual({ value: 'a', id: ID });
    else refusal(() => decodeChildCursor(raw, NAME));
  });

  it('answers any string with a position or a validation error, never anything else', () => {
    const sorts: ChildSort[] = ['name', 'size', 'modified'].flatMap((by) =>
      ['asc', 'desc'].map((dir) => ({ by, dir }) as ChildSort),
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 1100 }),
          fc.base64String({ maxLength: 200 }),
          fc.json({ maxDepth: 2 }).map((j) => Buffer.from(j).toString('base64url')),
          fc
            .record({
              value: fc.oneof(fc.string(), fc.integer().map(String)),
              id: fc.uuid(),
              by: fc.constantFrom('name', 'size', 'modified'),
              dir: fc.constantFrom('asc', 'desc'),
            })
            .map(b64),
          fc.record({ at: fc.string(), id: fc.uuid() }).map(b64),
        ),
        (raw) => {
          // Whatever is taken back is exactly what the encoder writes for it.
          for (const sort of sorts) {
            const got = attempt(() => decodeChildCursor(raw, sort));
            if (got) expect(encodeChildCursor(got, sort)).toBe(raw);
          }
          const got = attempt(() => decodeAuditCursor(raw));
          if (got) expect(encodeAuditCursor(got)).toBe(raw);
        },
      ),
      { numRuns: 500 },
    );
  });
});
