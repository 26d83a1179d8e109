import { describe, expect, it } from 'vitest';
import { DomainError } from '../../shared/domain/errors.ts';
import { baseFor, etagFor, NO_MATCH, revisionFromIfMatch } from '../../shared/domain/etag.ts';
import { statusOf } from '../../shared/http/problem.ts';

const id = '8a3d0ccf-1111-4222-8333-944455556666';

describe('If-Match (RFC 9110 §13.1.1)', () => {
  it('reads the revision of one of our tags, also inside a list', () => {
    expect(revisionFromIfMatch(etagFor({ id, revision: 7 }), id)).toBe(7);
    expect(revisionFromIfMatch(`"abc", ${etagFor({ id, revision: 3 })} ,`, id)).toBe(3);
  });

  it('treats "*" as any current version', () => {
    expect(revisionFromIfMatch(' * ', id)).toBe('*');
    expect(baseFor('*', 12)).toBe(12);
    expect(baseFor(4, 12)).toBe(4);
    expect(baseFor(undefined, 12)).toBeUndefined();
  });

  it.each([
    ['a tag this API never issued', '"never-issued"'],
    ['an empty tag', '""'],
    ['a weak tag (If-Match compares strongly)', `W/${etagFor({ id, revision: 1 })}`],
    ['a tag of another item', etagFor({ id: '00000000-0000-4000-8000-000000000000', revision: 1 })],
  ])('a well-formed header naming %s matches nothing (a stale base, not a 400)', (_what, header) => {
    expect(revisionFromIfMatch(header, id)).toBe(NO_MATCH);
  });

  it.each([['not-quoted'], ['"unterminated'], [','], ['"a" "b"']])('refuses %s with 400', (header) => {
    let caught: unknown;
    try {
      revisionFromIfMatch(header, id);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(DomainError);
    expect(statusOf(caught)).toBe(400);
  });

  it('is absent when the header is', () => {
    expect(revisionFromIfMatch(undefined, id)).toBeUndefined();
  });
});
