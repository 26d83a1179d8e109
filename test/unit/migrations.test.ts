/** Every migration statement stays inside Aurora DSQL's SQL subset. */
import { describe, expect, it } from 'vitest';
import { migrations } from '../../shared/adapters/postgres/migrations.ts';

const FORBIDDEN: [RegExp, string][] = [
  [/\bcreate\s+(or\s+replace\s+)?trigger\b/i, 'triggers'],
  [/\bcreate\s+(or\s+replace\s+)?function\b|\blanguage\s+plpgsql\b|\bdo\s+\$\$/i, 'PL/pgSQL'],
  [/\bcreate\s+(temp|temporary)\s+table\b/i, 'temp tables'],
  [/\btruncate\b/i, 'TRUNCATE'],
  [/\bsavepoint\b/i, 'SAVEPOINT'],
  [/\bcreate\s+extension\b/i, 'extensions'],
  [/\bcreate\s+sequence\b|\bserial\b|\bbigserial\b|\bgenerated\s+\w+\s+as\s+identity\b/i, 'sequences'],
  [/\bjsonb?\b(?=\s*(not\s+null|null|default|,|\)))/i, 'json column types'],
  [/\binherits\b|\bpartition\s+by\b/i, 'inheritance/partitioning'],
];

describe('migrations', () => {
  const statements = migrations.flatMap((m) => m.statements.map((s) => ({ version: m.version, s })));

  it('have unique, increasing versions', () => {
    const versions = migrations.map((m) => m.version);
    expect(new Set(versions).size).toBe(versions.length);
    expect([...versions].sort((a, b) => a - b)).toEqual(versions);
  });

  it.each(FORBIDDEN)('never use %s (%s)', (pattern) => {
    const offending = statements.filter(({ s }) => pattern.test(s));
    expect(offending).toEqual([]);
  });

  it('hold one statement each (DSQL runs one DDL per transaction)', () => {
    for (const { s } of statements) expect(s.replace(/;\s*$/, '')).not.toMatch(/;/);
  });

  it('are idempotent (IF NOT EXISTS everywhere)', () => {
    for (const { s } of statements) {
      if (/^\s*create\s+(unique\s+)?(table|index)/i.test(s)) expect(s).toMatch(/if\s+not\s+exists/i);
    }
  });

  it('use UUID or text keys, never integer sequences', () => {
    for (const { s } of statements) expect(s).not.toMatch(/\bid\s+(int|integer|bigint)\s+primary\s+key/i);
  });
});
